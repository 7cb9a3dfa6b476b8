"""The database: ``DATABASE_URL`` (SQLite in the project directory when
unset); Postgres connections come from psycopg's pool."""

from .environment import BASE_DIR, env

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Under ASGI every request runs its sync code in a thread of its own, so
# persistent per-thread connections would pile up: Postgres connections come
# from psycopg's pool instead (a connection goes back to it after each use).
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASE_POOL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_POOL", default=True
)
if DATABASE_POOL:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
        "timeout": 10,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
