"""OpenAPI descriptions of the authenticators (loaded in AppConfig.ready)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An organization API key (`ahk_...`) as a bearer token, or in the `X-API-Key` header.",
        }


class RevocableJWTScheme(SimpleJWTScheme):
    """simplejwt's description, for its subclass that refuses logged-out tokens."""

    target_class = "accounts.authentication.JWTAuthentication"
