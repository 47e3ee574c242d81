"""The HTTP endpoint (/metrics, /-/healthy, /-/ready, POST /-/reload) with optional TLS, basic
auth and bounds on what a client may send or hold."""

from monitord.http.server import CONTENT_TYPE_METRICS, Endpoints, HttpServer, parse_listen
from monitord.http.settings import HttpLimits, WebSettings
from monitord.http.stats import HttpCollector, HttpStats
from monitord.http.tls import ServerTls, TlsFileError, load_server_tls

__all__ = ["CONTENT_TYPE_METRICS", "Endpoints", "HttpCollector", "HttpLimits", "HttpServer",
           "HttpStats", "ServerTls", "TlsFileError", "WebSettings", "load_server_tls",
           "parse_listen"]
