"""WSGI entry point (the ASGI one, agenthub.asgi, is what AgentHub serves)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agenthub.settings.local")
application = get_wsgi_application()
