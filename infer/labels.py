"""The label schema: names, order and definitions of the two label groups.

`data/labels/schema.yaml` is the single source of truth. Training copies it into the checkpoint's
`config.json` (under `label_schema`), and inference reads it back from there only, so a checkpoint is
self-describing: the first `len(issues)` logits are the issue labels, the rest the stance labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

ISSUE_PREFIX = "issue/"
STANCE_PREFIX = "stance/"


@dataclass(frozen=True)
class LabelSchema:
    """Label names (in head order) and their definitions.

    Example:
        >>> schema = LabelSchema(issues=("expansion", "missiles"), stance=("favor", "against", "neutral"))
        >>> schema.id2label[2]
        'stance/favor'
        >>> schema.num_labels
        5
    """

    issues: tuple[str, ...]
    stance: tuple[str, ...]
    stance_target: str = ""
    definitions: dict[str, str] | None = None
    actors: tuple[str, ...] = ()  # optional annotation of who reacts (schema.yaml `actor`); not in the head
    registers: tuple[str, ...] = ()  # optional text register of a record (schema.yaml `registers`)

    def __post_init__(self) -> None:
        names = list(self.issues) + list(self.stance)
        if not self.issues or not self.stance:
            raise ValueError(f"A label schema needs at least one issue and one stance label, got {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"Label names must be unique across both groups, got {names}")
        if len(self.stance) < 2:
            raise ValueError(f"The stance group needs at least two labels, got {list(self.stance)}")

    @property
    def num_labels(self) -> int:
        return len(self.issues) + len(self.stance)

    @property
    def id2label(self) -> dict[int, str]:
        """Head index -> `issue/<name>` or `stance/<name>`, issues first."""
        names = [ISSUE_PREFIX + n for n in self.issues] + [STANCE_PREFIX + n for n in self.stance]
        return dict(enumerate(names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in self.id2label.items()}

    @property
    def issue_slice(self) -> slice:
        return slice(0, len(self.issues))

    @property
    def stance_slice(self) -> slice:
        return slice(len(self.issues), self.num_labels)

    def encode(self, issues: Sequence[str], stance: str) -> list[float]:
        """Gold labels -> the head-order target vector: multi-hot issues, then one-hot stance.

        Raises a ValueError naming the unknown label.

        Example:
            >>> LabelSchema(issues=("a", "b"), stance=("x", "y")).encode(["b"], "x")
            [0.0, 1.0, 1.0, 0.0]
        """
        vec = [0.0] * self.num_labels
        for name in issues:
            if name not in self.issues:
                raise ValueError(f"unknown issue label {name!r}; the schema has {list(self.issues)}")
            vec[self.issues.index(name)] = 1.0
        if stance not in self.stance:
            raise ValueError(f"unknown stance label {stance!r}; the schema has {list(self.stance)}")
        vec[len(self.issues) + self.stance.index(stance)] = 1.0
        return vec

    def split(self, scores: Any) -> tuple[Any, Any]:
        """(n, num_labels) scores or labels -> (issue columns (n, len(issues)), stance columns (n, len(stance)))."""
        import numpy as np

        scores = np.asarray(scores)
        return scores[:, self.issue_slice], scores[:, self.stance_slice]

    def decide(self, scores: Any, thresholds: Sequence[float]) -> tuple[Any, Any]:
        """Scores (n, num_labels) -> (issue decisions (n, len(issues)) bool, stance index (n,) int).

        An issue is on when its score reaches its threshold; the stance is the highest-scoring one.

        Example:
            >>> import numpy as np
            >>> on, stance = LabelSchema(issues=("a", "b"), stance=("x", "y")).decide(
            ...     np.array([[0.7, 0.2, 0.1, 0.9]]), [0.5, 0.5])
            >>> on.tolist(), stance.tolist()
            ([[True, False]], [1])
        """
        import numpy as np

        issues, stance = self.split(scores)
        return issues >= np.asarray(thresholds, dtype=np.float64), stance.argmax(axis=1)

    def scores(self, logits: Any) -> Any:
        """Head logits (n, num_labels) -> scores: sigmoid over issues, softmax over stance (numpy).

        Example:
            >>> import numpy as np
            >>> s = LabelSchema(issues=("a",), stance=("x", "y")).scores(np.zeros((1, 3)))
            >>> s.tolist()
            [[0.5, 0.5, 0.5]]
        """
        import numpy as np

        logits = np.asarray(logits, dtype=np.float64)
        out = np.empty_like(logits)
        out[:, self.issue_slice] = 1.0 / (1.0 + np.exp(-logits[:, self.issue_slice]))
        stance = logits[:, self.stance_slice]
        stance = np.exp(stance - stance.max(axis=1, keepdims=True))
        out[:, self.stance_slice] = stance / stance.sum(axis=1, keepdims=True)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in a checkpoint's `config.json` as `label_schema`."""
        return {
            "issues": list(self.issues),
            "stance": list(self.stance),
            "stance_target": self.stance_target,
            "definitions": dict(self.definitions or {}),
            "actors": list(self.actors),
            "registers": list(self.registers),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "label schema") -> LabelSchema:
        try:
            return cls(
                issues=tuple(data["issues"]),
                stance=tuple(data["stance"]),
                stance_target=data.get("stance_target", ""),
                definitions=dict(data.get("definitions") or {}),
                actors=tuple(data.get("actors") or ()),
                registers=tuple(data.get("registers") or ()),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{where}: expected keys 'issues' and 'stance' (lists of names), got {data!r}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> LabelSchema:
        """Read `data/labels/schema.yaml` (the format documented at its top).

        Example:
            >>> LabelSchema.from_yaml("data/labels/schema.yaml").issues[0]
            'expansion'
        """
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Label schema not found: {path}")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        try:
            issues = [item["name"] for item in raw["issues"]["labels"]]
            stance = [item["name"] for item in raw["stance"]["labels"]]
            definitions = {
                item["name"]: " ".join(str(item.get("definition", "")).split())
                for group in ("issues", "stance")
                for item in raw[group]["labels"]
            }
            target = str(raw["stance"].get("target", ""))
            actors = tuple(item["name"] for item in (raw.get("actor") or {}).get("labels", []))
            registers = tuple(str(r) for r in raw.get("registers") or ())
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}: expected 'issues.labels' and 'stance.labels', each a list of {{name, definition}}"
            ) from exc
        return cls(tuple(issues), tuple(stance), target, definitions, actors, registers)

    @classmethod
    def from_model_config(cls, config: Any) -> LabelSchema:
        """Read the schema a trained checkpoint carries in its `config.json`.

        Raises a ValueError saying what is missing when the checkpoint was not trained by this package.
        """
        data = getattr(config, "label_schema", None)
        if not isinstance(data, dict):
            raise ValueError(
                "This checkpoint has no `label_schema` in its config.json, so its two label groups (issues, "
                "stance) are unknown. Was it trained with `python -m train`?"
            )
        schema = cls.from_dict(data, where="config.json label_schema")
        id2label = {int(k): v for k, v in (getattr(config, "id2label", None) or {}).items()}
        if id2label != schema.id2label:
            raise ValueError(
                f"config.json id2label {id2label} does not match its label_schema {schema.id2label}: "
                "the checkpoint is inconsistent; retrain or fix config.json"
            )
        return schema
