"""Runtime settings from the environment (pydantic-settings); secrets stay `SecretStr`."""

from __future__ import annotations

from functools import cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """`LEDGERSTREAM_*` variables; Kafka and the database also read the common names."""

    model_config = SettingsConfigDict(env_prefix="LEDGERSTREAM_", extra="ignore")

    app_id: str = "ledgerstream"
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "LEDGERSTREAM_KAFKA_BOOTSTRAP_SERVERS"),
    )
    database_url: str = Field(
        "sqlite:///var/ledgerstream.db",
        validation_alias=AliasChoices("DATABASE_URL", "LEDGERSTREAM_DATABASE_URL"),
    )
    topic_prefix: str = Field("", description="prepended to every topic name (tests, shared clusters)")
    partitions: int = Field(4, ge=1, description="partitions of the order and command topics")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: str = "var/faust"
    ledgers: tuple[str, ...] = ("xero",)
    api_token: SecretStr | None = Field(None, description="bearer token for the operations API")
    post_batch_window: float = Field(1.0, gt=0, description="seconds to gather a batch of commands")
    max_attempts: int = Field(5, ge=1, description="tries of a retryable failure before dead-lettering")
    redrive_interval: float = Field(5.0, gt=0, description="seconds between re-drives of parked commands")


@cache
def settings() -> Settings:
    return Settings()
