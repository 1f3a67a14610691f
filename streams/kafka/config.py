"""Kafka connection options from settings, for Faust and for plain aiokafka clients alike."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import faust

from streams.kafka.tansu_compat import TANSU_CLIENT_TIMEOUTS, install_tansu_compat
from streams.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    return context


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer/Consumer/AdminClient."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    context = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def install_flavor_workarounds(settings: Settings) -> None:
    """The one explicit step that patches aiokafka, taken only for `FUNNEL_KAFKA_FLAVOR=tansu`;
    call it before starting any client. Against real Kafka nothing is patched."""
    if settings.kafka_flavor == "tansu":
        install_tansu_compat()


def faust_flavor_settings(settings: Settings) -> Mapping[str, Any]:
    """Faust client timeouts for the broker flavour: tansu's short joins, else Faust's own."""
    if settings.kafka_flavor == "tansu":
        return TANSU_CLIENT_TIMEOUTS.faust_settings()
    return {}
