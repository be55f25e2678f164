"""The nginx.conf template the gateway renders for every weight and backend change.

Placeholders are ``@{name}`` (``$`` belongs to nginx). Filled in by
:func:`paddle_canary.traffic.nginx_config.render`; nothing else here is dynamic.

How a request is routed:

* ``$canary_split``: ``split_clients`` on the ``X-User-ID`` header, the candidate's 1 % parts
  listed first, so raising the weight only extends the candidate's hash range (sticky users).
* ``$canary_route``: ``no_user`` when the header is missing or empty (sent to stable and
  counted in the access log), otherwise the split result.
* ``canary_candidate`` upstream: the candidate first, stable as ``backup``; with
  ``proxy_next_upstream ... non_idempotent`` a request the candidate refuses, drops, times out
  or answers 502/503/504 is answered by stable instead of turning into an error.
* ``X-Model-Version``: the header of the upstream that actually answered (after a fallback,
  stable's); ``none`` when nginx answered by itself (both backends down).

The status server on its own 127.0.0.1 port is read-only and served by the live config, so what
it says is what nginx loaded.
"""

from string import Template


class ConfTemplate(Template):
    delimiter = "@"


TEMPLATE = """\
# Rendered by paddle_canary.traffic (generation @{generation}, weight @{weight}).
# Do not edit: `paddle-canary gateway set-weight` re-renders it.
@{user_directive}
worker_processes @{worker_processes};
daemon off;
master_process on;
pid @{prefix}/nginx.pid;
lock_file @{prefix}/nginx.lock;
error_log @{prefix}/logs/error.log warn;
worker_shutdown_timeout 30s;

events {
    worker_connections 2048;
}

http {
    server_tokens off;
    client_body_temp_path @{prefix}/temp/client_body;
    proxy_temp_path @{prefix}/temp/proxy;
    fastcgi_temp_path @{prefix}/temp/fastcgi;
    uwsgi_temp_path @{prefix}/temp/uwsgi;
    scgi_temp_path @{prefix}/temp/scgi;
    keepalive_timeout 65s;
    keepalive_requests 100000;

    # The user's bucket 0..99 (one 1% part each), for the access log and /canary/route.
    split_clients "$http_x_user_id" $canary_bucket {
@{bucket_parts}
    }

    # The routing split: candidate parts first, so its range only grows with the weight.
    split_clients "$http_x_user_id" $canary_split {
@{split_parts}
    }

    map $http_x_user_id $canary_route {
        ""      no_user;
        default $canary_split;
    }

    map $http_x_user_id $canary_log_bucket {
        ""      null;
        default $canary_bucket;
    }

    map $canary_route $canary_upstream {
        candidate canary_candidate;
        default   canary_stable;
    }

    map $upstream_http_x_model_version $canary_version {
        ""      none;
        default $upstream_http_x_model_version;
    }

    # Which backend gave the final answer (the last address nginx tried).
    map $upstream_addr $canary_served_by {
        default none;
        "~(^|, )@{stable_re}$" stable;
        "~(^|, )@{candidate_re}$" candidate;
    }

    log_format canary escape=json
        '{"time":"$time_iso8601","msec":$msec,"user_id":"$http_x_user_id",'
        '"bucket":$canary_log_bucket,"route":"$canary_route","served_by":"$canary_served_by",'
        '"upstream":"$upstream_addr","status":$status,"upstream_status":"$upstream_status",'
        '"upstream_response_time":"$upstream_response_time","request_time":$request_time,'
        '"version":"$canary_version","method":"$request_method","uri":"$uri",'
        '"weight":@{weight},"generation":@{generation}}';

    upstream canary_stable {
        server @{stable_addr};
        keepalive 32;
        keepalive_timeout 4s;
    }

    upstream canary_candidate {
        server @{candidate_addr} max_fails=1 fail_timeout=@{fail_timeout_s}s;
@{candidate_backup}
        keepalive 32;
        keepalive_timeout 4s;
    }

    server {
        listen 127.0.0.1:@{port};
        access_log @{prefix}/logs/access.json canary;

        location / {
            proxy_pass http://$canary_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_connect_timeout 1s;
            proxy_send_timeout @{read_timeout_s}s;
            proxy_read_timeout @{read_timeout_s}s;
            proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_hide_header X-Model-Version;
            add_header X-Model-Version $canary_version always;
        }
    }

    # Read-only status, served by the live config.
    server {
        listen 127.0.0.1:@{status_port};
        access_log off;
        default_type text/plain;

        location = /canary/weight {
            return 200 "@{weight}\\n";
        }
        location = /canary/state {
            default_type application/json;
            return 200 '@{state_json}\\n';
        }
        # Echo what a request with this X-User-ID would get: "<route> <bucket>".
        location = /canary/route {
            return 200 "$canary_route $canary_bucket\\n";
        }
        location = /canary/stub_status {
            stub_status;
        }
        location / {
            return 404;
        }
    }
}
"""
