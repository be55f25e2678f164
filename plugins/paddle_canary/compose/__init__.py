"""The compose stack (``docker-compose.yaml`` at the top of the checkout): its images, its
``.env`` of secrets and the gateway config the Airflow side renders for the nginx container.
Imports no Airflow."""
