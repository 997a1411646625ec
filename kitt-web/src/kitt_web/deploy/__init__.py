"""Generated Docker deployments: `kitt stack` (kitt-web, PostgreSQL, an agent, monitoring)
and `kitt monitoring` (Prometheus, Grafana, InfluxDB). Each is a folder of plain files a
person can read and `docker compose` can run: docs/deployment.md, docs/monitoring.md.

    folder.py      the folders: names, atomic generation, .env secrets, the registry
    compose.py     the compose tool and the daemon: up, down, health, ports
    services.py    the services' Compose definitions, shared by both kinds
    monitoring.py  Prometheus's configuration and Grafana's provisioning
    dashboards.py  Grafana dashboards as code, each panel on a series KITT exports
    generate.py    what `kitt stack generate` and `kitt monitoring generate` write
    lifecycle.py   start (and the tokens a stack's running kitt-web makes), stop, status,
                   remove
    remote.py      a deployment on another host over SSH (asyncssh): deploy, status,
                   stop, remove
    cli.py         the click commands
"""
