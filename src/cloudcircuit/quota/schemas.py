"""Request and response bodies of the quota service (they make its OpenAPI document).

Bodies forbid unknown fields and reject NaN and infinities, so a bad body is a 422 naming
the field; amounts are bounded like the ledger's (``MAX_AMOUNT``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloudcircuit.quota.model import MAX_AMOUNT

__all__ = [
    "Amount",
    "ChargeBody",
    "ChargeOut",
    "CheckBody",
    "CommitBody",
    "CommitOut",
    "DenialOut",
    "ErrorOut",
    "HealthOut",
    "LimitBody",
    "LimitOut",
    "ReleaseBody",
    "ReleaseOut",
    "RequestId",
    "ReservationOut",
    "ReserveBody",
    "ScopeMap",
    "ScopeUsageOut",
    "SpendBody",
    "StatusOut",
    "Tokens",
    "UsageOut",
    "ValidationOut",
]

Amount = Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]
RequestId = Annotated[str, Field(pattern=r"^[^\s/{}|=\\]{1,128}$")]
Tokens = Annotated[int, Field(ge=0, le=100_000_000)]
ScopeMap = Annotated[
    dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], str],
    Field(description='One entity per level, e.g. {"project": "p1", "user": "u1"}.'),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReserveBody(_Body):
    scope: ScopeMap
    estimate: Amount | None = Field(None, description="Cost to hold; or give model + tokens.")
    model: str | None = Field(None, min_length=1, max_length=200)
    input_tokens: Tokens | None = None
    max_output_tokens: Tokens | None = None
    request_id: RequestId | None = None
    ttl_seconds: float | None = Field(None, gt=0, le=86_400, allow_inf_nan=False)

    @model_validator(mode="after")
    def _cost(self) -> ReserveBody:
        if self.estimate is None and self.model is None:
            raise ValueError("give estimate, or model with input_tokens and max_output_tokens")
        return self


class CommitBody(_Body):
    reservation_id: str = Field(min_length=1, max_length=2000)
    actual: Amount | None = Field(None, description="Actual cost; or give model + tokens.")
    model: str | None = Field(None, min_length=1, max_length=200)
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None

    @model_validator(mode="after")
    def _cost(self) -> CommitBody:
        if self.actual is None and self.model is None:
            raise ValueError("give actual, or model with input_tokens and output_tokens")
        return self


class ReleaseBody(_Body):
    reservation_id: str = Field(min_length=1, max_length=2000)


class ChargeBody(_Body):
    scope: ScopeMap
    amount: Amount
    request_id: RequestId | None = None


class LimitBody(_Body):
    scope: ScopeMap
    limit: Amount | None = Field(None, description="None: unlimited (unless clear).")
    clear: bool = Field(False, description="Drop the stored limit: back to configuration.")


class CheckBody(BaseModel):
    user_id: str = Field(min_length=1, max_length=128)
    project_id: str | None = Field(None, min_length=1, max_length=128)
    estimated_cost: Amount = 0.0


class SpendBody(BaseModel):
    user_id: str = Field(min_length=1, max_length=128)
    cost: Amount
    project_id: str | None = Field(None, min_length=1, max_length=128)
    model: str | None = Field(None, min_length=1, max_length=200)


class ReservationOut(BaseModel):
    status: Literal["reserved"] = "reserved"
    reservation_id: str
    request_id: str
    amount: float
    expires_at: float | None
    replayed: bool
    degraded: bool


class DenialOut(BaseModel):
    status: Literal["denied"] = "denied"
    request_id: str | None
    reason: Literal["limit", "ledger_unavailable", "unpriced", "invalid"]
    message: str
    scope: str | None
    level: str | None
    entity: str | None
    limit: float | None
    committed: float
    held: float
    requested: float


class CommitOut(BaseModel):
    status: Literal["committed"] = "committed"
    request_id: str
    actual: float
    late: bool
    replayed: bool


class ReleaseOut(BaseModel):
    status: Literal["released", "expired"]
    request_id: str
    replayed: bool


class ChargeOut(BaseModel):
    status: Literal["charged"] = "charged"
    request_id: str
    amount: float
    over: list[str]
    replayed: bool


class ScopeUsageOut(BaseModel):
    scope: str
    level: str
    entity: str
    window: str
    committed: float
    held: float
    limit: float | None
    remaining: float | None


class UsageOut(BaseModel):
    scopes: list[ScopeUsageOut]


class LimitOut(BaseModel):
    scope: str
    limit: float | None


class StatusOut(BaseModel):
    status: str


class HealthOut(BaseModel):
    status: Literal["healthy", "unhealthy"]
    ledger: Literal["connected", "unreachable"]
    redis: Literal["connected", "unreachable"]
    backend: str


class ErrorOut(BaseModel):
    detail: str


class _FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationOut(BaseModel):
    detail: list[_FieldError]
