"""One application error type, mapped once to the API's error shape:

    {"error": {"code", "message", "details"}, "request_id"}

Services raise :class:`ApplicationError` (or a subclass); the DRF exception
handler and the plain-Django handlers below render every error the same way.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from agenthub.requestid import get_request_id

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None, details=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details or {}


class NotFoundError(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class ForbiddenError(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {
        "error": {"code": code, "message": message, "details": details if details is not None else {}},
        "request_id": get_request_id(),
    }


def error_response(code: str, message: str, status_code: int, details: Any = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status_code)


def _validation_message(detail) -> str:
    if isinstance(detail, dict):
        non_field = detail.get("non_field_errors")
        if non_field:
            return str(non_field[0])
        for field, errors in detail.items():
            first = errors[0] if isinstance(errors, list) and errors else errors
            if isinstance(first, dict | list):
                return f"Invalid input in '{field}'."
            return f"{field}: {first}"
    if isinstance(detail, list) and detail:
        return str(detail[0])
    return "Invalid input."


def _error_code(exc) -> str:
    """The exception's own code: DRF's default ones (``not_found``,
    ``throttled``...), the one a raiser chose (``api_key_revoked``), or
    simplejwt's (``token_not_valid``)."""
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict) and "code" in detail:
        return str(detail["code"])
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else getattr(exc, "default_code", "error")


def api_exception_handler(exc, context):
    """DRF's ``EXCEPTION_HANDLER``: every API error in one shape."""
    if isinstance(exc, ApplicationError):
        from rest_framework.response import Response

        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if getattr(exc, "retry_after", None):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        from rest_framework.response import Response

        return Response(
            error_body("payload_too_large", "The request body is larger than this server accepts."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(str(exc) or "Malformed request.")

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handling takes over

    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("validation_error", _validation_message(exc.detail), {"fields": exc.detail})
        return response

    code = _error_code(exc)
    if isinstance(exc, exceptions.Throttled):
        details = {"retry_after_seconds": int(exc.wait) if exc.wait is not None else None}
        message = "Too many requests. Slow down and retry after the time in the Retry-After header."
    else:
        detail = exc.detail
        if isinstance(detail, dict):
            # simplejwt puts {"detail", "code", "messages"} here.
            message = str(detail.get("detail", "Request failed."))
            details = {k: v for k, v in detail.items() if k not in ("detail", "code")}
        else:
            message = str(detail)
            details = {}
    response.data = error_body(code, message, details)
    return response


def _wants_json(request) -> bool:
    path = request.path
    return path.startswith(("/api/", "/v1/", "/health", "/metrics")) or "application/json" in request.META.get(
        "HTTP_ACCEPT", ""
    )


def handler400(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        # Django turns it into a 400 like any SuspiciousOperation; it is a 413.
        if _wants_json(request):
            return error_response("payload_too_large", "The request body is larger than this server accepts.", 413)
        from django.http import HttpResponse

        return HttpResponse("Request body too large.", status=413, content_type="text/plain")
    if _wants_json(request):
        return error_response("bad_request", "Malformed request.", 400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def handler403(request, exception=None):
    if _wants_json(request):
        return error_response("permission_denied", "You do not have permission to perform this action.", 403)
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


def handler404(request, exception=None):
    if _wants_json(request):
        return error_response("not_found", f"Nothing is at {request.path}. Check the URL and the API docs.", 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if _wants_json(request):
        return error_response("server_error", "An unexpected error occurred; it has been logged.", 500)
    from django.views.defaults import server_error

    return server_error(request)
