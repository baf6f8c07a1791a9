"""A project folder: project.json naming the two domains (name and image folders) and runs.

Pure data: neither Qt nor torch. The app and `cyclestudio demo` both write it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclestudio.errors import UserError

PROJECT_FILE = "project.json"
PROJECT_VERSION = 1
VALIDATION_FLAGS = ("val_a", "val_truth", "val_b", "val_b_truth")


@dataclass
class Domain:
    """One side of the translation: a name and the folders (or files) holding its images."""

    name: str
    paths: list[str] = field(default_factory=list)
    # Images left out of folders in ``paths`` (removed in the app, not deleted on disk).
    exclude: list[str] = field(default_factory=list)


@dataclass
class Project:
    """A project folder and its project.json."""

    folder: Path
    name: str
    a: Domain
    b: Domain
    runs: list[str] = field(default_factory=list)
    # Held-out folders for validation while training, by `train` flag name without
    # dashes (val_a, val_truth, val_b, val_b_truth); empty: a slice of each domain.
    validation: dict[str, str] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.folder / PROJECT_FILE

    def resolve(self, path: str) -> Path:
        """A path from project.json (relative to the project folder, or absolute)."""
        p = Path(path)
        return p if p.is_absolute() else self.folder / p

    def relative(self, path: Path) -> str:
        """Store paths inside the project relative to it, so the folder can move."""
        path = Path(path).absolute()
        try:
            return path.relative_to(self.folder.absolute()).as_posix()
        except ValueError:
            return str(path)

    def domain(self, key: str) -> Domain:
        """Domain "A" or "B"."""
        return self.a if key == "A" else self.b

    def image_files(self, domain: Domain) -> list[Path]:
        """Every image file a domain names (its folders walked), minus the excluded ones."""
        from cyclestudio.core.imagescan import list_images  # torch-free, like this module

        excluded = {str(self.resolve(p)) for p in domain.exclude}
        files: list[Path] = []
        for source in domain.paths:
            path = self.resolve(source)
            if path.is_dir():
                files.extend(list_images(path))
            elif path.is_file():
                files.append(path)
        seen: set[str] = set()
        unique = []
        for f in files:
            text = str(f)
            if text not in excluded and text not in seen:
                seen.add(text)
                unique.append(f)
        return unique

    def new_run_folder(self, root: str | Path | None = None) -> Path:
        """A fresh, not yet existing run folder under ``root`` (default: the project's runs/)."""
        import time

        root = Path(root) if root else self.folder / "runs"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run = root / f"run-{stamp}"
        n = 2
        while run.exists():
            run = root / f"run-{stamp}-{n}"
            n += 1
        return run

    def validation_arguments(self) -> list[str]:
        """The `train` flags for the project's held-out folders (absolute paths)."""
        args: list[str] = []
        for name in VALIDATION_FLAGS:
            if self.validation.get(name):
                args += ["--" + name.replace("_", "-"), str(self.resolve(self.validation[name]))]
        return args

    def add_run(self, run: Path) -> None:
        """Remember a run folder (most recent last); saving is the caller's."""
        rel = self.relative(run)
        if rel in self.runs:
            self.runs.remove(rel)
        self.runs.append(rel)

    def to_json(self) -> dict[str, Any]:
        return {
            "project_version": PROJECT_VERSION,
            "name": self.name,
            "domains": {
                key: {"name": d.name, "paths": list(d.paths), "exclude": list(d.exclude)}
                for key, d in (("A", self.a), ("B", self.b))
            },
            "runs": list(self.runs),
            "validation": dict(self.validation),
        }

    def save(self) -> None:
        """Write project.json atomically."""
        write_json_atomic(self.file, self.to_json())

    @classmethod
    def create(cls, folder: Path, name: str = "", a_name: str = "A", b_name: str = "B") -> Project:
        """A new project in ``folder`` (created if needed)."""
        folder = Path(folder)
        if (folder / PROJECT_FILE).exists():
            raise UserError(f"{folder} already holds a project", "open it instead")
        folder.mkdir(parents=True, exist_ok=True)
        project = cls(folder, name or folder.name, Domain(a_name), Domain(b_name))
        project.save()
        return project

    @classmethod
    def load(cls, folder: Path) -> Project:
        """Read ``folder``/project.json, migrating older versions."""
        folder = Path(folder)
        file = folder / PROJECT_FILE if folder.is_dir() or not folder.suffix else folder
        folder = file.parent
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(
                f"{folder} is not a cyclestudio project", f"no {PROJECT_FILE} there"
            ) from None
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {file}: {exc}", "the file is damaged") from None
        version = data.get("project_version", 0)
        if version > PROJECT_VERSION:
            raise UserError(
                f"{file} was written by a newer cyclestudio (version {version})",
                "update cyclestudio",
            )
        domains = data.get("domains", {})

        def domain(key: str) -> Domain:
            d = domains.get(key, {})
            return Domain(
                str(d.get("name", key)),
                [str(p) for p in d.get("paths", [])],
                [str(p) for p in d.get("exclude", [])],
            )

        validation = data.get("validation") or {}
        return cls(
            folder, str(data.get("name", folder.name)), domain("A"), domain("B"),
            [str(r) for r in data.get("runs", [])],
            {str(k): str(v) for k, v in validation.items() if k in VALIDATION_FLAGS and v},
        )


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file beside ``path``, fsync it, then rename over ``path``."""
    from cyclestudio.atomic import atomic_write

    with atomic_write(Path(path), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
