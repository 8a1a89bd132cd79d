"""`dg scaffold defs osipi_dagster.PIConnection <name>`: a commented, valid defs.yaml for one PI Web API."""

from __future__ import annotations

import dagster as dg

TEMPLATE = """\
type: {type_name}

# One PI Web API. Every field is optional except the URL; docs/connections.md lists them all.
# Secrets (password, bearer_token, oidc_client_secret, lake_storage_options) only as '{{{{ env.VAR }}}}'.
attributes:
  pi_web_api_url: "{{{{ env.{var}_URL }}}}"   # or a literal https://host/piwebapi
  auth_method: anonymous                   # anonymous | basic | kerberos | bearer
  # username: svc-pi
  # password: "{{{{ env.{var}_PASSWORD }}}}"
  verify_tls: true
  # ca_bundle: certs/site-ca.pem
  data_servers: []                         # empty: every data server
  tag_filter: "*"
  af_databases: []                         # empty: every AF database
  start_date: 2024-01-01                   # first partition
  # lake_uri: ./data/lake                  # one lake root; this connection's tables go under <lake_uri>/{name}
  # lake_path: {name}
  # key_prefix: [{name}]                   # asset keys {name}/pi_points, {name}/pi_timeseries, ...
  # group: {name}
  # pool: pi_web_api_{name}                # this site's PI concurrency pool
  # pool_limit: 2
  schedules: {{}}                          # timeseries / catalogue / event_frames: cron overrides
  timezone: UTC                            # of the schedules' crons
  quality: {{}}                            # e.g. {{min_good_share: 0.95}}
  late_data: {{}}                          # e.g. {{lookback_hours: 48}}
"""


class PIConnectionScaffolder(dg.Scaffolder):
    """Writes `<path>/defs.yaml` from TEMPLATE, its URL read from `<NAME>_URL`."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = request.target_path.name
        request.target_path.mkdir(parents=True, exist_ok=True)
        text = TEMPLATE.format(type_name=request.type_name, name=name, var=name.upper())
        (request.target_path / "defs.yaml").write_text(text)
