"""The nginx.conf templates the gateway renders for every route change.

Placeholders are ``@{name}`` (``$`` belongs to nginx). Filled in by
:func:`paddle_canary.traffic.nginx_config.render`; nothing else here is dynamic.

Per model ``mN`` (N: the model's index in the rendered config):

* ``/models/<model>/...`` is the model's route (the prefix is stripped before proxying); the
  default model is also served on every other path (``/predict``, ``/predict/batch``, ...).
* ``$split_mN``: ``split_clients`` on ``"<model>:$http_x_user_id"``, the candidate's 1 % parts
  listed first, so raising the weight only extends the candidate's hash range (sticky users);
  salting with the model keeps one model's canary users apart from another's.
* ``$route_mN``: ``header`` when the header route matches, ``no_user`` when the X-User-ID header
  is missing or empty (sent to stable and counted in the access log), otherwise the split.
* ``mN_candidate`` upstream: the candidate first, stable as ``backup``; with
  ``proxy_next_upstream ... non_idempotent`` a request the candidate refuses, drops, times out
  or answers 502/503/504 is answered by stable instead of turning into an error.
* Mirror: a ``mirror`` subrequest per request of the model's location; the internal mirror
  location returns at once unless the request went to stable and falls in the mirror share
  (``$mirror_mN``), and then proxies a copy to the candidate with short timeouts and a
  ``max_fails`` circuit, so a hung candidate costs stable's users at most one short timeout per
  ``fail_timeout``. Its answers are discarded.
* ``X-Model-Version``: the header of the upstream that actually answered (after a fallback,
  stable's); ``none`` when nginx answered by itself (both backends down).

The status server on its own 127.0.0.1 port is read-only and served by the live config, so what
it says is what nginx loaded.
"""

from string import Template


class ConfTemplate(Template):
    delimiter = "@"


MODEL_TEMPLATE = """\
    # ---- model @{model} (@{mid})
    split_clients "@{model}:$http_x_user_id" $bucket_@{mid} {
@{bucket_parts}
    }
    split_clients "@{model}:$http_x_user_id" $split_@{mid} {
@{split_parts}
    }
    map $http_x_user_id $user_route_@{mid} {
        ""      no_user;
        default $split_@{mid};
    }
@{header_map}    map $http_x_user_id $log_bucket_@{mid} {
        ""      null;
        default $bucket_@{mid};
    }
    map $route_@{mid} $upstream_@{mid} {
        candidate @{mid}_candidate;
        header    @{mid}_candidate;
        default   @{mid}_stable;
    }
    split_clients "$request_id" $mirror_pick_@{mid} {
@{mirror_parts}
    }
    map "$route_@{mid}:$mirror_pick_@{mid}" $mirror_@{mid} {
        "stable:1"  1;
        "no_user:1" 1;
        default     "";
    }
    map $request_uri $path_@{mid} {
        "~^/models/@{model}(?<rest_@{mid}>/.*)$" $rest_@{mid};
        default $request_uri;
    }
    upstream @{mid}_stable {
        server @{stable_addr};
        keepalive 32;
        keepalive_timeout 4s;
    }
    upstream @{mid}_candidate {
        server @{candidate_addr} max_fails=1 fail_timeout=@{fail_timeout_s}s;
@{candidate_backup}
        keepalive 32;
        keepalive_timeout 4s;
    }
    upstream @{mid}_mirror {
        server @{candidate_addr} max_fails=1 fail_timeout=@{fail_timeout_s}s;
        keepalive 8;
        keepalive_timeout 4s;
    }
"""

PROXY_SETTINGS = """\
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header @{mirror_header} "";
            proxy_connect_timeout 1s;
            proxy_send_timeout @{read_timeout_s}s;
            proxy_read_timeout @{read_timeout_s}s;
            proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_hide_header X-Model-Version;
            add_header X-Model-Version $canary_version always;
"""

MIRROR_SETTINGS = """\
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header @{mirror_header} 1;
            proxy_connect_timeout @{mirror_timeout_ms}ms;
            proxy_send_timeout @{mirror_timeout_ms}ms;
            proxy_read_timeout @{mirror_timeout_ms}ms;
            proxy_next_upstream off;
"""

TEMPLATE = """\
# Rendered by paddle_canary.traffic (generation @{generation}).
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
    client_header_timeout 10s;
    large_client_header_buffers 4 8k;

@{model_blocks}
    map $upstream_http_x_model_version $canary_version {
        ""      none;
        default $upstream_http_x_model_version;
    }

    # Which backend gave the final answer (the last address nginx tried).
    map $upstream_addr $canary_served_by {
        default none;
@{served_by}
    }

    log_format canary escape=json
        '{"time":"$time_iso8601","msec":$msec,"model":"$canary_model",'
        '"user_id":"$http_x_user_id","bucket":$canary_bucket,"route":"$canary_route",'
        '"served_by":"$canary_served_by","upstream":"$upstream_addr","status":$status,'
        '"upstream_status":"$upstream_status",'
        '"upstream_response_time":"$upstream_response_time","request_time":$request_time,'
        '"version":"$canary_version","method":"$request_method","uri":"$uri",'
        '"weight":$canary_weight,"generation":@{generation}}';

    server {
        listen 127.0.0.1:@{port};
        access_log @{prefix}/logs/access.json canary;
        # No server-level `set` of the $canary_* variables: a mirror subrequest shares them and
        # would reset them in its server-rewrite phase. Every location sets all four.

@{locations}    }

    # Read-only status, served by the live config.
    server {
        listen 127.0.0.1:@{status_port};
        access_log off;
        default_type text/plain;

        location = /canary/state {
            default_type application/json;
            return 200 '@{state_json}\\n';
        }
        # "<route> <bucket>" for a request with this X-User-ID (and header) to a model.
@{status_routes}        location = /metrics {
            default_type "text/plain; version=0.0.4";
            return 200 '@{metrics}';
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
