"""Built-in plugin metrics: "pycm" (semantic) and "instances" / "instances_per_class" (instance).

The metric modules import only numpy; pycm and matplotlib load when a report is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepseg_core import hookimpl
from deepseg_core.metrics.instances import ClassAwareInstanceMetric, InstanceMetric
from deepseg_core.metrics.pycm_report import PycmMetric

if TYPE_CHECKING:
    from deepseg_core.plugins.registry import Registry


@hookimpl(tryfirst=True)  # built-ins register first: others may override
def deepseg_register_metrics(registry: Registry) -> None:
    registry.add_metric("pycm", PycmMetric)
    registry.add_metric("instances", InstanceMetric)
    registry.add_metric("instances_per_class", ClassAwareInstanceMetric)
