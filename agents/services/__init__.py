"""Writes for the agents app, one module per concern:

- :mod:`agents.services.agents` — create, update, delete, status, bulk actions;
- :mod:`agents.services.publishing` — publish immutable versions, roll back, deploy;
- :mod:`agents.services.templates` — render industry templates into system
  prompts and create agents from them.

Every service is keyword-only, typed and atomic, and reports failures with
:class:`agenthub.errors.ApplicationError` (or a subclass), which the API
renders in the shared error shape and the admin shows as a message.
"""
