"""Alert sink settings: a generic signed webhook, Slack and PagerDuty (one union on ``type``).

Secrets are never written in the policy: sinks name the environment variable that holds them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from cloudcircuit.policy._base import (
    PolicyModel,
    PositiveFloat,
    Severity,
    check_env_name,
    check_name,
    check_url,
)

__all__ = [
    "AlertSinkConfig",
    "PagerDutySinkConfig",
    "SinkBase",
    "SlackSinkConfig",
    "WebhookSinkConfig",
]


class SinkBase(PolicyModel):
    """What every alert sink has."""

    name: str = Field(description="Unique sink name.")
    min_severity: Severity = Field(
        default="warning", description="Send alerts of this severity and above."
    )
    dedup_minutes: float = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description="Suppress the same alert (budget, scope, action) for this long.",
    )
    timeout_seconds: PositiveFloat = Field(default=10.0, description="HTTP timeout per attempt.")
    retries: int = Field(default=3, ge=0, le=10, description="Retries with backoff on failure.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "sink name")

    def env_names(self) -> list[str]:
        """Environment variables this sink reads at send time (secrets, URLs)."""
        return []


class WebhookSinkConfig(SinkBase):
    """Generic JSON webhook, signed with HMAC-SHA256 when a secret is configured."""

    type: Literal["webhook"] = Field(description="Sink type.")
    url: str = Field(description="http(s) URL to POST to; ${VAR} is expanded from the environment.")
    secret_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the HMAC key "
        "(X-Cloudcircuit-Signature: sha256=<hex>).",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("secret_env")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return check_env_name(value)

    def env_names(self) -> list[str]:
        return [self.secret_env] if self.secret_env else []


class SlackSinkConfig(SinkBase):
    """Slack incoming webhook (Block Kit message)."""

    type: Literal["slack"] = Field(description="Sink type.")
    webhook_url: str | None = Field(default=None, description="Incoming-webhook URL.")
    webhook_url_env: str | None = Field(
        default=None, description="Environment variable holding the incoming-webhook URL."
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, https_only=True)

    @field_validator("webhook_url_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return check_env_name(value)

    @model_validator(mode="after")
    def _one_url(self) -> SlackSinkConfig:
        if (self.webhook_url is None) == (self.webhook_url_env is None):
            raise ValueError("give exactly one of 'webhook_url' and 'webhook_url_env'")
        return self

    def env_names(self) -> list[str]:
        return [self.webhook_url_env] if self.webhook_url_env else []


class PagerDutySinkConfig(SinkBase):
    """PagerDuty Events API v2."""

    type: Literal["pagerduty"] = Field(description="Sink type.")
    routing_key_env: str = Field(
        description="Environment variable holding the integration (routing) key."
    )
    url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue", description="Events API v2 endpoint."
    )

    @field_validator("routing_key_env")
    @classmethod
    def _env(cls, value: str) -> str:
        checked = check_env_name(value)
        assert checked is not None
        return checked

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    def env_names(self) -> list[str]:
        return [self.routing_key_env]


AlertSinkConfig = Annotated[
    WebhookSinkConfig | SlackSinkConfig | PagerDutySinkConfig, Field(discriminator="type")
]
