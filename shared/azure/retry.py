"""ARM retries with tenacity: honour Retry-After, jittered backoff, a total time budget, idempotent calls only.

The policy replaces azure-core's RetryPolicy in every client the gateway builds, so each HTTP request
(list pages and LRO polls included) is retried here and nowhere else.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from shared.telemetry import get_logger, log_event

log = get_logger("azure")
TRANSIENT_STATUS = frozenset({408, 500, 502, 503, 504})
# POSTs that are safe to repeat: starting a running VM or deallocating a deallocated one is a no-op.
_IDEMPOTENT_POST = re.compile(r"/virtualMachines/[^/]+/(start|deallocate)$|/userSessions/[^/]+/disconnect$", re.I)


def is_idempotent(method: str, url: str) -> bool:
    """May this request be sent twice with the same effect as once?"""
    method = method.upper()
    if method in {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"}:
        return True
    return method == "POST" and _IDEMPOTENT_POST.search(urlsplit(url).path) is not None


def retry_after(headers: Any) -> float | None:
    """Seconds the service asked us to wait: retry-after-ms, x-ms-retry-after-ms, then Retry-After."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class ArmRetryPolicy(HTTPPolicy[Any, Any]):
    """Retry 429 always (within `budget_s`); 408/5xx, resets and timeouts only for idempotent requests, at most
    `max_attempts` times and within `budget_s`."""

    def __init__(
        self,
        *,
        budget_s: float = 60.0,
        max_attempts: int = 10,
        backoff_s: float = 0.5,
        max_backoff_s: float = 16.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.budget_s = budget_s
        self.max_attempts = max_attempts
        self.sleep = sleep
        self._backoff = wait_random_exponential(multiplier=backoff_s, max=max_backoff_s)

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        """Send `request`, retrying what is safe to retry; the last response or error is what the caller sees."""
        http = request.http_request
        idempotent = is_idempotent(http.method, http.url)

        def retry_status(response: PipelineResponse[Any, Any]) -> bool:
            status = response.http_response.status_code
            return status == 429 or (idempotent and status in TRANSIENT_STATUS)

        def retry_error(exc: BaseException) -> bool:
            # A request error means nothing reached the service; a response error means it may have acted.
            return isinstance(exc, ServiceRequestError) or (idempotent and isinstance(exc, ServiceResponseError))

        def wait(state: RetryCallState) -> float:
            outcome = state.outcome
            if outcome is not None and not outcome.failed:
                asked = retry_after(outcome.result().http_response.headers)
                if asked is not None:
                    return asked
            return float(self._backoff(state))

        def before_sleep(state: RetryCallState) -> None:
            outcome = state.outcome
            what = (
                str(outcome.result().http_response.status_code)
                if outcome and not outcome.failed
                else type(outcome.exception()).__name__
                if outcome
                else "?"
            )
            log_event(
                log,
                "arm.retry",
                method=http.method,
                path=urlsplit(http.url).path,
                outcome=what,
                attempt=state.attempt_number,
                wait_s=round(state.upcoming_sleep, 3),
            )

        within_budget = stop_before_delay(self.budget_s)
        out_of_attempts = stop_after_attempt(self.max_attempts)

        def stop(state: RetryCallState) -> bool:
            """A throttled call waits as ARM asks until the budget is spent; other failures also stop after
            `max_attempts` (429 is ARM saying "later", not "broken")."""
            outcome = state.outcome
            throttled = outcome is not None and not outcome.failed and outcome.result().http_response.status_code == 429
            return bool(within_budget(state) or (not throttled and out_of_attempts(state)))

        retrying = Retrying(
            retry=retry_if_result(retry_status) | retry_if_exception(retry_error),
            wait=wait,
            stop=stop,
            sleep=self.sleep,
            before_sleep=before_sleep,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            reraise=True,
        )
        return retrying(self.next.send, request)
