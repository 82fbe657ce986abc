"""The nginx configuration the README's production section points to is valid nginx (``nginx -t``), and its body
limit is the app's."""

from __future__ import annotations

import re
import shutil
import subprocess

from api import create_app
from api.edge.limits import LARGE_BODIES
from tests.conftest import missing_service
from tests.serving.servers import ROOT

CONFIG = ROOT / "deploy" / "nginx.conf"


def test_the_nginx_configuration_passes_nginx_t(tmp_path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        missing_service("nginx is not installed (Debian's package nginx)")
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(CONFIG)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_nginx_takes_no_bigger_body_than_the_app_and_a_statement_as_big_as_it_takes(tmp_path):
    config = CONFIG.read_text()
    limit = re.search(r"client_max_body_size (\d+)k;", config)
    statements = re.search(r"location ~ \^/\((.+)\)\$ \{\s*client_max_body_size (\d+)m;", config)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}", "TESTING": True})
    assert limit and int(limit[1]) * 1024 == app.config["MAX_CONTENT_LENGTH"]
    assert statements and int(statements[2]) * 1024 * 1024 == max(LARGE_BODIES.values())
    routes = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
    pattern = re.compile("^/(" + statements[1] + ")$")
    for endpoint in LARGE_BODIES:  # every route the app lets take a file, nginx lets through with it
        example = re.sub(r"<int:\w+>", "7", routes[endpoint])
        assert pattern.match(example), example
    app.extensions["ledger_db"].dispose()
