"""The one pull-request comment with the plans, written by any number of CI jobs.

Each environment has a section of its own, kept between hidden markers that also carry its
summary line, so a job (`opsgit plan --env prod --status --comment`, one per matrix entry)
rewrites only its own section: it reads the comment, puts its section in, rebuilds the body
(the summary table from every section, the sections, the footer) and writes it whole. GitHub has
no conditional write for comments, so a job that finishes at the same moment as another may
write over it: each writer reads the comment back and writes again until its section is there
(last writer wins, whole sections only; a section is never half-written). Two jobs that both
found no comment and made one each: the older comment keeps every section, the other is removed.

GitHub refuses comments over 65,536 characters: each section's plan is cut at a fair share of
what is left after the summary table and footer, with a note and a link to the run's full log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

MARKER = "<!-- opsgit:plans -->"
LIMIT = 65_536
MARGIN = 512  # the markers' and the cut notes' own characters, with room to spare
_SECTION = re.compile(r"<!-- opsgit:section (?P<meta>\{.*?\}) -->\n(?P<details>.*?)\n<!-- opsgit:section-end -->",
                      re.S)


@dataclass(frozen=True)
class Section:
    env: str
    result: str      # planned, failed, policy failed, error
    summary: str     # `Plan: 1 to add, 0 to change, 0 to destroy.`, or the error
    policy: str = ""  # `Policy: 45 passed, 0 failed.`
    details: str = ""  # the plan text

    def meta(self) -> str:
        data = {"env": self.env, "result": self.result, "summary": self.summary, "policy": self.policy}
        return json.dumps(data, sort_keys=True).replace("--", "\\u002d\\u002d")  # never ends the HTML comment


def parse(body: str) -> dict[str, Section]:
    sections = {}
    for match in _SECTION.finditer(body):
        try:
            meta = json.loads(match["meta"])
            section = Section(str(meta["env"]), str(meta["result"]), str(meta["summary"]), str(meta.get("policy", "")),
                              _details_of(match["details"]))
        except (ValueError, KeyError, TypeError):
            continue  # a section someone edited by hand: rebuilt by its own job next time
        sections[section.env] = section
    return sections


def _details_of(block: str) -> str:
    """The plan text inside a section's ```diff block."""
    inner = block.split("```diff\n", 1)[1] if "```diff\n" in block else ""
    return inner.rsplit("\n```", 1)[0] if "\n```" in inner else inner


def render(sections: Mapping[str, Section], *, title: str, run_url: str | None, limit: int = LIMIT) -> str:
    """The comment's whole body, under `limit` characters."""
    ordered = [sections[name] for name in sorted(sections)]
    head = [MARKER, f"### {title}", "", "| environment | result | summary | policy |", "|---|---|---|---|"]
    head += [f"| `{s.env}` | {s.result} | {_cell(s.summary)} | {_cell(s.policy)} |" for s in ordered]
    footer = ["", "---", "To apply: merge this pull request — each environment is applied under its run lock, "
              "with a status `opsgit/apply: <env>`. A stuck lock: `opsgit unlock --env <env>` "
              "(`opsgit locks` lists them)." + (f" Every job's full output: {run_url}" if run_url else "")]
    fixed = len("\n".join(head + footer)) + MARGIN * max(1, len(ordered))
    share = max(200, (limit - fixed) // max(1, len(ordered)))
    parts = []
    for section in ordered:
        details = diff_markup(section.details)
        if len(details) > share:
            kept = details[:share].rsplit("\n", 1)[0]
            hidden = details[len(kept):].count("\n") + 1
            where = f" in the run's log: {run_url}" if run_url else " in the job's log"
            details = (f"{kept}\n# … {hidden} more lines not shown here (GitHub's comment limit); "
                       f"the whole plan is{where}")
        parts += ["", f"<!-- opsgit:section {section.meta()} -->",
                  f"<details><summary>{section.env}: {_cell(section.summary)}</summary>\n\n```diff\n{details}\n```\n"
                  "</details>", "<!-- opsgit:section-end -->"]
    body = "\n".join(head + parts + footer)
    if len(body) > limit:  # a summary line or the table itself is huge: keep the table, cut the rest
        body = body[:limit - 200] + "\n\n# … cut at GitHub's comment limit\n"
    return body


_SYMBOL = re.compile(r"^(?P<lead> *)(?P<symbol>-/\+|\+/-|<=|[+~-])(?P<rest> .*)$")


def diff_markup(text: str) -> str:
    """Plan text for a ```diff block: each change symbol moved to the first column, where
    GitHub colours it (`+` green, `-` red; `~`, `-/+` and `<=` become `!`, shown as changed)."""
    lines = []
    for line in text.splitlines():
        match = _SYMBOL.match(line)
        if match is None:
            lines.append(" " + line)
            continue
        symbol = {"+": "+", "-": "-"}.get(match["symbol"], "!")
        lines.append(symbol + match["lead"] + " " * len(match["symbol"]) + match["rest"])
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:300]
