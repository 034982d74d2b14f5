"""Django settings. Every value that differs between machines comes from the
environment through ``anomaly.env``; ``DJANGO_ENV=production`` switches on the
secure defaults and refuses to start without a real secret key."""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from anomaly.env import EnvError, env
from anomaly.logging import build_logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DJANGO_ENV = env.choice("DJANGO_ENV", "local", ("local", "test", "production"))
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env.bool("DJANGO_DEBUG", default=False)


def _local_secret_key() -> str:
    # Outside production a key is generated once and kept under var/, so local
    # sessions survive restarts without anyone committing a secret.
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


if PRODUCTION and DEBUG:
    raise EnvError("DJANGO_DEBUG must not be true when DJANGO_ENV=production")

SECRET_KEY = env.str("DJANGO_SECRET_KEY")
if SECRET_KEY is None:
    if PRODUCTION:
        raise EnvError("DJANGO_SECRET_KEY must be set when DJANGO_ENV=production")
    SECRET_KEY = _local_secret_key()

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# Reverse proxies in front of the app (Traefik: 1); client IPs are read from
# X-Forwarded-For only that far, for the request log, lockouts and throttling.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", 0, minimum=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_prometheus",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "detection",
    "dashboard",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "anomaly.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "anomaly.csp.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "anomaly.urls"
WSGI_APPLICATION = "anomaly.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# --- database -------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'anomaly.sqlite3'}")
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)
except (ValueError, KeyError) as exc:
    raise EnvError(f"DATABASE_URL: {exc}") from None
# Django's backends with django-prometheus' query metrics (anomaly/db).
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["ENGINE"] = "anomaly.db.sqlite3"
    _database["OPTIONS"] = {
        # WAL lets readers run beside the one writer; IMMEDIATE makes a writer
        # take the lock up front, so concurrent writers queue instead of
        # failing with "database is locked" halfway through a transaction.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    _database["CONN_MAX_AGE"] = 0 if DJANGO_ENV == "test" else 600
elif _database["ENGINE"] == "django.db.backends.postgresql":
    _database["ENGINE"] = "anomaly.db.postgresql"
DATABASES = {"default": _database}
# The most seconds between a server worker's checkpoints of SQLite's
# write-ahead log; each commit also wakes its thread
# (anomaly/db/sqlite3/checkpoint.py). 0 leaves them to the commits that fill it.
SQLITE_CHECKPOINT_SECONDS = env.float("SQLITE_CHECKPOINT_SECONDS", 0.5, minimum=0.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache (shared by throttling; Redis when several instances run) -------
REDIS_URL = env.str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", "anomaly"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "anomaly",
        }
    }

# --- auth -----------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "dashboard:login"

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", 15, minimum=0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client's address as the request log reads it: X-Forwarded-For trusted
# only as far as TRUSTED_PROXY_COUNT proxies reach. (AXES_IPWARE_* settings
# need django-ipware, which is not installed: axes would read REMOTE_ADDR, and
# behind Traefik every client would share the proxy's address and lockouts.)
AXES_CLIENT_IP_CALLABLE = "anomaly.middleware.client_ip"
AXES_VERBOSE = False

# --- i18n / static --------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- request limits -------------------------------------------------------
# A batch of 1,000 transactions is about 450 KB of JSON; 2 MB leaves room for
# verbose clients and still stops a body that could exhaust a worker.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", 2 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
UPLOAD_MAX_CSV_BYTES = env.int("UPLOAD_MAX_CSV_BYTES", 5 * 1024 * 1024, minimum=1024)

# --- detection ------------------------------------------------------------
ML_ARTIFACTS_DIR = env.path("ML_ARTIFACTS_DIR", BASE_DIR / "ml_artifacts")
ML_CONTAMINATION = env.float("ML_CONTAMINATION", 0.05, minimum=0.0001, maximum=0.5)
ML_RANDOM_STATE = env.int("ML_RANDOM_STATE", 42)
ML_FLAG_RULE = env.choice("ML_FLAG_RULE", "both", ("both", "either"))
ML_HISTORY_DAYS = env.int("ML_HISTORY_DAYS", 90, minimum=1)
# Rows of recent history each worker process keeps for large batches
# (detection/history_cache.py), about 0.5 KB each; 0 reads every batch's
# history from the database.
ML_HISTORY_CACHE_ROWS = env.int("ML_HISTORY_CACHE_ROWS", 250_000, minimum=0)
# 100 trees score as well as 200 on the labelled evaluation (ROC-AUC 0.976 vs
# 0.975) at half the scoring cost.
ML_IF_N_ESTIMATORS = env.int("ML_IF_N_ESTIMATORS", 100, minimum=10)
ML_IF_MAX_SAMPLES = env.int("ML_IF_MAX_SAMPLES", 512, minimum=16)
# LOF scores a row against every training row; 2,000 rows with 30 neighbours
# flag as well as 3,000 with 50, at 40 % less scoring (docs/features.md).
ML_LOF_N_NEIGHBORS = env.int("ML_LOF_N_NEIGHBORS", 30, minimum=2)
ML_LOF_MAX_TRAINING_ROWS = env.int("ML_LOF_MAX_TRAINING_ROWS", 2_000, minimum=100)
API_MAX_BATCH = env.int("API_MAX_BATCH", 1000, minimum=1)

# --- API ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "detection.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "detection.api.pagination.TransactionPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", "120/minute"),
        "user": env.str("API_THROTTLE_USER", "100000/minute"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Transaction anomaly detection API",
    "DESCRIPTION": "Scores bank transactions with Isolation Forest and Local Outlier Factor.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- logging --------------------------------------------------------------
LOG_DIR = env.path("LOG_DIR", VAR_DIR / "log")
LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = build_logging_config(log_dir=LOG_DIR, level=LOG_LEVEL)

# --- production switches --------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Prometheus and the container health check talk plain HTTP on the
    # internal network; they must not be redirected.
    SECURE_REDIRECT_EXEMPT = [r"^metrics$", r"^api/health/$", r"^api/ready/$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
