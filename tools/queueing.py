"""The tools app's Celery tasks by name.  Services enqueue through these
names (``tasks.py`` registers the functions under them), so a service never
imports the task module that calls it.  The names keep their historical
``agents.tasks.*`` form: queued messages and beat schedules carry them."""

from celery import current_app

TOOL_EXECUTE = "agents.tasks.tool_execute"
DRAFT_EXECUTE = "agents.tasks.draft_execute"
DRAFTS_EXPIRE = "agents.tasks.drafts_expire"


def task(name: str):
    """The registered task (Celery's eager mode and routes apply as usual)."""
    return current_app.tasks[name]
