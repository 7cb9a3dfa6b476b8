"""Where settings come from: ``BASE_DIR`` and ``env``, which reads the process
environment and then ``BASE_DIR/.env`` (never overriding the process)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)
