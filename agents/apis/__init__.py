"""The agents app's API: agents and versions, grants, templates and configuration."""
