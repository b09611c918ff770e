"""FOCUS column lists for versions 1.0, 1.1 and 1.2, as the specification defines them.

Derived from the FOCUS specification's ``specification/columns/*.md`` at the v1.0, v1.1 and v1.2
tags (FinOps Foundation, CC BY 4.0). Each entry is ``(column, feature level, introduced in)``;
the feature level is ``M`` (Mandatory), ``C`` (Conditional) or ``R`` (Recommended). The FOCUS
reader requires the Mandatory columns of the version it reads and uses the ``introduced`` field
to tell the versions apart when a file does not say which one it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from cloudcircuit.errors import InputError

__all__ = [
    "FOCUS_VERSIONS",
    "columns_of",
    "detect_version",
    "mandatory_columns",
    "normalize_version",
]


#: version -> ((column, feature level M/C/R, version that introduced it), ...)
FOCUS_VERSIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "1.0": (
        ("AvailabilityZone", "R", "0.5"),
        ("BilledCost", "M", "0.5"),
        ("BillingAccountId", "M", "0.5"),
        ("BillingAccountName", "M", "0.5"),
        ("BillingCurrency", "M", "0.5"),
        ("BillingPeriodEnd", "M", "0.5"),
        ("BillingPeriodStart", "M", "0.5"),
        ("ChargeCategory", "M", "0.5"),
        ("ChargeClass", "M", "1.0"),
        ("ChargeDescription", "M", "1.0-preview"),
        ("ChargeFrequency", "R", "1.0-preview"),
        ("ChargePeriodEnd", "M", "0.5"),
        ("ChargePeriodStart", "M", "0.5"),
        ("CommitmentDiscountCategory", "C", "1.0-preview"),
        ("CommitmentDiscountId", "C", "1.0-preview"),
        ("CommitmentDiscountName", "C", "1.0-preview"),
        ("CommitmentDiscountStatus", "C", "1.0"),
        ("CommitmentDiscountType", "C", "1.0-preview"),
        ("ConsumedQuantity", "C", "1.0"),
        ("ConsumedUnit", "C", "1.0"),
        ("ContractedCost", "M", "1.0"),
        ("ContractedUnitPrice", "C", "1.0"),
        ("EffectiveCost", "M", "0.5"),
        ("InvoiceIssuerName", "M", "0.5"),
        ("ListCost", "M", "1.0-preview"),
        ("ListUnitPrice", "C", "1.0-preview"),
        ("PricingCategory", "C", "1.0-preview"),
        ("PricingQuantity", "M", "1.0-preview"),
        ("PricingUnit", "M", "1.0-preview"),
        ("ProviderName", "M", "0.5"),
        ("PublisherName", "M", "0.5"),
        ("RegionId", "C", "1.0"),
        ("RegionName", "C", "1.0"),
        ("ResourceId", "C", "0.5"),
        ("ResourceName", "C", "0.5"),
        ("ResourceType", "C", "1.0-preview"),
        ("ServiceCategory", "M", "0.5"),
        ("ServiceName", "M", "0.5"),
        ("SkuId", "C", "1.0-preview"),
        ("SkuPriceId", "C", "1.0-preview"),
        ("SubAccountId", "C", "0.5"),
        ("SubAccountName", "C", "0.5"),
        ("Tags", "C", "1.0-preview"),
    ),
    "1.1": (
        ("AvailabilityZone", "R", "0.5"),
        ("BilledCost", "M", "0.5"),
        ("BillingAccountId", "M", "0.5"),
        ("BillingAccountName", "M", "0.5"),
        ("BillingCurrency", "M", "0.5"),
        ("BillingPeriodEnd", "M", "0.5"),
        ("BillingPeriodStart", "M", "0.5"),
        ("CapacityReservationId", "C", "1.1"),
        ("CapacityReservationStatus", "C", "1.1"),
        ("ChargeCategory", "M", "0.5"),
        ("ChargeClass", "M", "1.0"),
        ("ChargeDescription", "M", "1.0-preview"),
        ("ChargeFrequency", "R", "1.0-preview"),
        ("ChargePeriodEnd", "M", "0.5"),
        ("ChargePeriodStart", "M", "0.5"),
        ("CommitmentDiscountCategory", "C", "1.0-preview"),
        ("CommitmentDiscountId", "C", "1.0-preview"),
        ("CommitmentDiscountName", "C", "1.0-preview"),
        ("CommitmentDiscountQuantity", "C", "1.1"),
        ("CommitmentDiscountStatus", "C", "1.0"),
        ("CommitmentDiscountType", "C", "1.0-preview"),
        ("CommitmentDiscountUnit", "C", "1.1"),
        ("ConsumedQuantity", "C", "1.0"),
        ("ConsumedUnit", "C", "1.0"),
        ("ContractedCost", "M", "1.0"),
        ("ContractedUnitPrice", "C", "1.0"),
        ("EffectiveCost", "M", "0.5"),
        ("InvoiceIssuerName", "M", "0.5"),
        ("ListCost", "M", "1.0-preview"),
        ("ListUnitPrice", "C", "1.0-preview"),
        ("PricingCategory", "C", "1.0-preview"),
        ("PricingQuantity", "M", "1.0-preview"),
        ("PricingUnit", "M", "1.0-preview"),
        ("ProviderName", "M", "0.5"),
        ("PublisherName", "M", "0.5"),
        ("RegionId", "C", "1.0"),
        ("RegionName", "C", "1.0"),
        ("ResourceId", "C", "0.5"),
        ("ResourceName", "C", "0.5"),
        ("ResourceType", "C", "1.0-preview"),
        ("ServiceCategory", "M", "0.5"),
        ("ServiceName", "M", "0.5"),
        ("ServiceSubcategory", "R", "1.1"),
        ("SkuId", "C", "1.0-preview"),
        ("SkuMeter", "C", "1.1"),
        ("SkuPriceDetails", "C", "1.1"),
        ("SkuPriceId", "C", "1.0-preview"),
        ("SubAccountId", "C", "0.5"),
        ("SubAccountName", "C", "0.5"),
        ("Tags", "C", "1.0-preview"),
    ),
    "1.2": (
        ("AvailabilityZone", "R", "0.5"),
        ("BilledCost", "M", "0.5"),
        ("BillingAccountId", "M", "0.5"),
        ("BillingAccountName", "M", "0.5"),
        ("BillingAccountType", "C", "1.2"),
        ("BillingCurrency", "M", "0.5"),
        ("BillingPeriodEnd", "M", "0.5"),
        ("BillingPeriodStart", "M", "0.5"),
        ("CapacityReservationId", "C", "1.1"),
        ("CapacityReservationStatus", "C", "1.1"),
        ("ChargeCategory", "M", "0.5"),
        ("ChargeClass", "M", "1.0"),
        ("ChargeDescription", "M", "1.0-preview"),
        ("ChargeFrequency", "R", "1.0-preview"),
        ("ChargePeriodEnd", "M", "0.5"),
        ("ChargePeriodStart", "M", "0.5"),
        ("CommitmentDiscountCategory", "C", "1.0-preview"),
        ("CommitmentDiscountId", "C", "1.0-preview"),
        ("CommitmentDiscountName", "C", "1.0-preview"),
        ("CommitmentDiscountQuantity", "C", "1.1"),
        ("CommitmentDiscountStatus", "C", "1.0"),
        ("CommitmentDiscountType", "C", "1.0-preview"),
        ("CommitmentDiscountUnit", "C", "1.1"),
        ("ConsumedQuantity", "C", "1.0"),
        ("ConsumedUnit", "C", "1.0"),
        ("ContractedCost", "M", "1.0"),
        ("ContractedUnitPrice", "C", "1.0"),
        ("EffectiveCost", "M", "0.5"),
        ("InvoiceId", "R", "1.2"),
        ("InvoiceIssuerName", "M", "0.5"),
        ("ListCost", "M", "1.0-preview"),
        ("ListUnitPrice", "C", "1.0-preview"),
        ("PricingCategory", "C", "1.0-preview"),
        ("PricingCurrency", "C", "1.2"),
        ("PricingCurrencyContractedUnitPrice", "C", "1.2"),
        ("PricingCurrencyEffectiveCost", "C", "1.2"),
        ("PricingCurrencyListUnitPrice", "C", "1.2"),
        ("PricingQuantity", "M", "1.0-preview"),
        ("PricingUnit", "M", "1.0-preview"),
        ("ProviderName", "M", "0.5"),
        ("PublisherName", "M", "0.5"),
        ("RegionId", "C", "1.0"),
        ("RegionName", "C", "1.0"),
        ("ResourceId", "C", "0.5"),
        ("ResourceName", "C", "0.5"),
        ("ResourceType", "C", "1.0-preview"),
        ("ServiceCategory", "M", "0.5"),
        ("ServiceName", "M", "0.5"),
        ("ServiceSubcategory", "R", "1.1"),
        ("SkuId", "C", "1.0-preview"),
        ("SkuMeter", "C", "1.1"),
        ("SkuPriceDetails", "C", "1.1"),
        ("SkuPriceId", "C", "1.0-preview"),
        ("SubAccountId", "C", "0.5"),
        ("SubAccountName", "C", "0.5"),
        ("SubAccountType", "C", "1.2"),
        ("Tags", "C", "1.0-preview"),
    ),
}

_ALIASES = {"1": "1.0", "1.0r2": "1.0"}


def normalize_version(version: str) -> str:
    """``"v1.2"``, ``"1.2"`` -> ``"1.2"``; Azure's ``"1.0r2"`` -> ``"1.0"``; else InputError."""
    text = version.strip().lower().removeprefix("v")
    text = _ALIASES.get(text, text)
    if text not in FOCUS_VERSIONS:
        known = ", ".join(FOCUS_VERSIONS)
        raise InputError(f"unsupported FOCUS version {version!r}; supported: {known}")
    return text


def columns_of(version: str) -> tuple[str, ...]:
    """Every column the given FOCUS version defines."""
    return tuple(name for name, _, _ in FOCUS_VERSIONS[normalize_version(version)])


def mandatory_columns(version: str) -> tuple[str, ...]:
    """The Mandatory columns of the given FOCUS version (a conforming file has all of them)."""
    return tuple(
        name for name, level, _ in FOCUS_VERSIONS[normalize_version(version)] if level == "M"
    )


def detect_version(columns: Iterable[str]) -> str:
    """The newest FOCUS version whose own new columns appear in ``columns`` (default 1.0).

    FOCUS files carry no version marker; the columns a version introduced are the tell
    (1.2 added BillingAccountType, InvoiceId, PricingCurrency...; 1.1 added SkuMeter...).
    """
    present = {c.lower() for c in columns}
    for version in sorted(FOCUS_VERSIONS, reverse=True):
        introduced = {n.lower() for n, _, since in FOCUS_VERSIONS[version] if since == version}
        if introduced & present:
            return version
    return "1.0"
