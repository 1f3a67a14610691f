"""What the simulator simulates: traffic channels, devices and the run's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas.event import Device
from streams.sim.incidents import Incident

# Mean messages per simulated session with the default traffic mix; it turns a message rate
# into a session rate so that event time runs at wall-clock speed.
MESSAGES_PER_SESSION = 3.4


@dataclass(frozen=True, slots=True)
class Channel:
    """A traffic source and its funnel.

    The stage fields are P(add_to_cart | page_view), P(checkout | add_to_cart) and
    P(purchase | checkout) on desktop; `DeviceProfile` scales them.
    """

    utm_source: str
    utm_medium: str
    utm_campaign: str | None
    referrer: str | None
    weight: float
    add_to_cart: float
    checkout: float
    purchase: float
    cost_per_click: str = "0"  # ad cost per landing session (decimal); 0: an unpaid channel


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """A device share and multipliers on the channel's stage probabilities."""

    device: Device
    weight: float
    add_to_cart: float = 1.0
    checkout: float = 1.0
    purchase: float = 1.0


DEFAULT_CHANNELS = (
    Channel(
        "google",
        "cpc",
        "brand-search",
        "https://www.google.com/",
        0.30,
        0.12,
        0.55,
        0.70,
        "0.85",
    ),
    Channel(
        "facebook",
        "paid_social",
        "autumn-sale",
        "https://l.facebook.com/",
        0.20,
        0.08,
        0.45,
        0.62,
        "0.60",
    ),
    Channel("newsletter", "email", "weekly-deals", None, 0.15, 0.15, 0.60, 0.75, "0.03"),
    Channel("direct", "none", None, None, 0.35, 0.10, 0.55, 0.72),
)
# Small screens lose people at the checkout form; that is where mobile funnels leak.
DEFAULT_DEVICES = (
    DeviceProfile(Device.DESKTOP, 0.45),
    DeviceProfile(Device.MOBILE, 0.45, add_to_cart=0.9, checkout=0.75, purchase=0.9),
    DeviceProfile(Device.TABLET, 0.10, add_to_cart=0.95, checkout=0.9),
)
DEFAULT_COUNTRIES = (("DE", 0.3), ("FR", 0.15), ("NL", 0.1), ("GB", 0.1), ("US", 0.2), ("ES", 0.15))


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate. Rates are per second of *event* time, shares are in [0, 1].

    The run ends after `sessions` sessions or once sessions would start past `duration`,
    whichever comes first; with both None it never ends (stop it from the caller).
    """

    start: datetime
    seed: int = 0
    sites: tuple[str, ...] = ("shop-1",)
    sessions: int | None = 1000
    duration: timedelta | None = None
    session_rate: float = 5.0
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS
    devices: tuple[DeviceProfile, ...] = DEFAULT_DEVICES
    countries: tuple[tuple[str, float], ...] = DEFAULT_COUNTRIES
    variants: tuple[str, ...] = ("A", "B")
    currency: str = "EUR"
    usd_countries: tuple[str, ...] = ("US",)
    logged_in_share: float = 0.3
    customer_pool: int = 1_000_000  # logged-in sessions draw their user_id from this many
    mean_page_views: float = 3.0
    catalog_size: int = 200
    remove_rate: float = 0.1
    readd_rate: float = 0.05
    readd_pause: tuple[timedelta, timedelta] = (timedelta(minutes=40), timedelta(minutes=120))
    duplicate_rate: float = 0.0
    out_of_order_ms: int = 0
    epoch_ms_share: float = 0.2
    invalid_rate: float = 0.0
    incidents: tuple[Incident, ...] = ()
    pace: float = 1.0  # < 1 runs each session's timeline faster (demos)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be a timezone-aware datetime")
        if not self.sites or not self.channels or not self.devices or not self.countries:
            raise ValueError("sites, channels, devices and countries must not be empty")
        if not self.variants:
            raise ValueError("variants must not be empty")
        for name in (
            "logged_in_share",
            "remove_rate",
            "readd_rate",
            "duplicate_rate",
            "epoch_ms_share",
            "invalid_rate",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if not 0 < self.pace <= 1:
            raise ValueError("pace must be within (0, 1]")
        if self.session_rate <= 0:
            raise ValueError("session_rate must be positive")
        if self.sessions is not None and self.sessions < 0:
            raise ValueError("sessions must not be negative")
        if self.out_of_order_ms < 0:
            raise ValueError("out_of_order_ms must not be negative")
        if self.mean_page_views < 1:
            raise ValueError("mean_page_views must be at least 1")
        if self.customer_pool < 1:
            raise ValueError("customer_pool must be at least 1")
        if self.catalog_size < 1:
            raise ValueError("catalog_size must be at least 1")
        if not timedelta(0) <= self.readd_pause[0] <= self.readd_pause[1]:
            raise ValueError("readd_pause must be an ordered (min, max) pair")

    @property
    def start_ms(self) -> int:
        return (self.start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
