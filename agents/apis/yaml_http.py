"""YAML over HTTP: the body handed over as text (the YAML service parses it,
so that errors carry field paths) and YAML responses."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

YAML_MEDIA_TYPES = ("application/yaml", "text/yaml", "application/x-yaml")


class YAMLTextParser(BaseParser):
    """Hands the body over as text; :mod:`agents.services.yamldoc` parses it, so that
    errors carry field paths."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            return stream.read().decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"The YAML body is not valid {encoding} text.") from exc


class TextYAMLParser(YAMLTextParser):
    media_type = "text/yaml"


class XYAMLParser(YAMLTextParser):
    media_type = "application/x-yaml"


class YAMLRenderer(BaseRenderer):
    """Renders YAML text as it is, and anything else (an error) as YAML."""

    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        import yaml

        if data is None:
            return b""
        if isinstance(data, str):
            return data.encode(self.charset)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode(self.charset)
