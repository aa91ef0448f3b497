"""A URL filter written in Python (componentize-py): requests for static resources do not
touch the session. Config `suffixes`: comma-separated path suffixes (default .css,.js,.png).

Targets the current WIT (shoal:plugin@0.2.0 in wit/; the frozen 0.1.0 is wit/v0.1.0).
Build: componentize-py -d ../../../wit -w url-filter componentize app -o url-filter-py.component.wasm
"""
import wit_world
from wit_world.imports import host


class WitWorld(wit_world.WitWorld):
    def may_touch_session(self, req) -> bool:
        raw = host.config_get("suffixes") or ".css,.js,.png"
        suffixes = tuple(s.strip() for s in raw.split(",") if s.strip())
        return not req.path.endswith(suffixes)
