"""The paper's Table 4, re-measured: JS and TVD (``harness.paper.TABLE4_METHODS``) with
their offline teacher prefixes (the default) against teacher prefixes sampled each step
("online"), side by side with the paper's published speed-ups."""

from __future__ import annotations

from ..methods.base import Method
from ..paper import TABLE4_METHODS
from ..paper.published import speedups

ONLINE = "online-teacher"


class OnlineTeacher(Method):
    """``inner`` with its offline teacher prefixes replaced by teacher samples drawn every step.

    The "online" row of the paper's Table 4; the per-token loss is unchanged (it is told
    its prefixes are the teacher's, as before).
    """

    def __init__(self, inner: Method):
        self.inner = inner
        self.name = inner.name
        self.params = inner.params
        self.uses_teacher = inner.uses_teacher
        self.needs_hidden_states = inner.needs_hidden_states

    def prefix_weights(self) -> dict[str, float]:
        return {("teacher_sample" if s == "teacher_offline" else s): w for s, w in self.inner.prefix_weights().items()}

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return self.inner.token_loss(student_logits, teacher_logits, tokens,
                                     "teacher_offline" if source == "teacher_sample" else source)

    def extra_loss(self, student_out, teacher_out, batch, layer_map):
        return self.inner.extra_loss(student_out, teacher_out, batch, layer_map)


def variants(name: str, method: Method, modes: tuple[str, ...], table4: bool = True
             ) -> dict[str, tuple[Method, tuple[str, ...]]]:
    """The arms one method is measured in: its default, and with ``table4`` for the Table 4 methods the online
    variant too (in every mode but ``bare``, whose floor has no online counterpart to measure)."""
    arms = {"default": (method, modes)}
    online_modes = tuple(m for m in modes if m != "bare")
    if table4 and name in TABLE4_METHODS and online_modes:
        arms[ONLINE] = (OnlineTeacher(method), online_modes)
    return arms


def format_table4(rows: list[dict]) -> list[str]:
    """Lines of the online-vs-offline comparison (none when no online variant was measured)."""
    online = {(r["preset"], r["method"], r["mode"]): r for r in rows if r["variant"] == ONLINE}
    if not online:
        return []
    offline = {(r["preset"], r["method"], r["mode"]): r for r in rows if r["variant"] == "default"}
    paper = speedups()   # the paper's, on DART
    lines = ["", "Table 4: offline teacher prefixes vs online (teacher sampled each step), speed-up per step",
             f"{'preset':<10} {'method':<7} {'mode':<10} {'online ms':>10} {'offline ms':>10} {'speed-up':>9} "
             f"{'paper':>6}"]
    for key, on in online.items():
        off = offline.get(key)
        if off is None:
            continue
        preset, method, mode = key
        published = f"{paper[method]:>5.2f}×" if method in paper else f"{'-':>6}"
        lines.append(f"{preset:<10} {method:<7} {mode:<10} {on['step_s'] * 1000:>10.0f} "
                     f"{off['step_s'] * 1000:>10.0f} {on['online_over_offline']:>8.2f}× {published}")
    return lines
