"""The function bundle: ``main.py`` (our handler) + ``metric.py`` (the user's file) [+ ``requirements.txt``].

The same bundle goes to every provider: written as a folder for ``local``, as deterministic zip bytes
(fixed timestamps and permissions, sorted entries) for the clouds, so identical inputs always give
identical bytes. ``code_sha256`` covers every file of the bundle, so upgrading the handler also counts
as a code change on the next deploy.
"""
from __future__ import annotations

import ast
import hashlib
import io
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .providers.base import ProviderError

HANDLER_FILE = "main.py"
METRIC_FILE = "metric.py"
REQUIREMENTS_FILE = "requirements.txt"
# Zip timestamps cannot predate 1980; a fixed one keeps the archive byte-for-byte reproducible.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class MetricValidationError(ProviderError, ValueError):
    """The metric file cannot be deployed; the message names the file (and line) and the problem."""


@dataclass(frozen=True)
class Bundle:
    """The files of one function bundle, by name, in a fixed order."""

    files: tuple[tuple[str, bytes], ...]
    metric_path: str

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.files]

    def content(self, name: str) -> bytes:
        for file_name, data in self.files:
            if file_name == name:
                return data
        raise KeyError(name)

    @property
    def code_sha256(self) -> str:
        """Hash over every file name and content (length-prefixed, so no two bundles collide)."""
        digest = hashlib.sha256()
        for name, data in self.files:
            encoded = name.encode()
            digest.update(len(encoded).to_bytes(4, "big") + encoded)
            digest.update(len(data).to_bytes(8, "big") + data)
        return digest.hexdigest()

    def zip_bytes(self) -> bytes:
        """A deterministic zip archive (the upload format of Lambda and Cloud Functions)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files:
                info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
                info.create_system = 3  # unix, so the permissions above are honoured
                archive.writestr(info, data)
        return buffer.getvalue()

    def write_dir(self, directory: str | os.PathLike) -> Path:
        """Write the bundle's files into ``directory`` (created; other files there are left alone)."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        for name, data in self.files:
            (target / name).write_bytes(data)
        return target


def handler_source() -> bytes:
    """The installed handler's ``main.py``."""
    return resources.files("lse_custom_metrics.handler").joinpath(HANDLER_FILE).read_bytes()


def _accepts_agreement_call(func: ast.FunctionDef) -> str | None:
    """Why ``func`` cannot be called as ``agreement(a1, a2, per_label=...)``, or None if it can."""
    args = func.args
    positional = args.posonlyargs + args.args
    if len(positional) < 2 and args.vararg is None:
        return f"takes {len(positional)} positional argument(s); it must accept (annotation_1, annotation_2)"
    # parameters after the two annotations: per_label must be among them (or **kwargs must take it)
    rest = positional[2:]
    rest_names = [a.arg for a in rest] + [a.arg for a in args.kwonlyargs]
    if "per_label" in [a.arg for a in args.posonlyargs]:
        return "declares per_label as positional-only; it is passed as a keyword argument"
    if "per_label" not in rest_names and args.kwarg is None:
        return "has no per_label parameter; it must accept per_label=False"
    # any other parameter after the annotations needs a default, since only per_label is passed
    defaults_start = len(positional) - len(args.defaults)
    for index, arg in enumerate(positional[2:], start=2):
        if arg.arg != "per_label" and index < defaults_start:
            return f"requires a parameter {arg.arg!r} that is never passed"
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        if arg.arg != "per_label" and default is None:
            return f"requires a keyword-only parameter {arg.arg!r} that is never passed"
    return None


def validate_metric(path: str | os.PathLike) -> str:
    """Check that ``path`` is a deployable metric; return its source text.

    Raises MetricValidationError naming the file (and line) when it is missing, does not parse, or does
    not define a top-level ``agreement(annotation_1, annotation_2, per_label=False)``. An ``agreement``
    bound by assignment or import is accepted (its signature can only be checked by running it).
    """
    file = Path(path)
    if not file.is_file():
        raise MetricValidationError(f"{file}: metric file not found")
    try:
        source = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetricValidationError(f"{file}: not UTF-8 text ({exc})") from None
    try:
        tree = ast.parse(source, filename=str(file))
    except SyntaxError as exc:
        raise MetricValidationError(f"{file} line {exc.lineno}: SyntaxError: {exc.msg}") from None
    definition = None
    bound_otherwise = False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "agreement":
            definition = node
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "agreement" for t in node.targets
        ):
            definition, bound_otherwise = None, True
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (alias.asname or alias.name) == "agreement" for alias in node.names
        ):
            definition, bound_otherwise = None, True
    if definition is None:
        if bound_otherwise:
            return source
        raise MetricValidationError(
            f"{file}: defines no top-level function "
            "`agreement(annotation_1, annotation_2, per_label=False)`"
        )
    if isinstance(definition, ast.AsyncFunctionDef):
        raise MetricValidationError(
            f"{file} line {definition.lineno}: `agreement` is `async def`; it must be a plain function"
        )
    problem = _accepts_agreement_call(definition)
    if problem:
        raise MetricValidationError(f"{file} line {definition.lineno}: `agreement` {problem}")
    return source


def build_bundle(
    metric_path: str | os.PathLike,
    requirements: str | os.PathLike | None = None,
    *,
    find_requirements: bool = True,
) -> Bundle:
    """Validate the metric and assemble its bundle.

    ``requirements``: an explicit requirements file; otherwise a ``requirements.txt`` beside the metric
    is included when ``find_requirements`` is true.
    """
    metric = Path(metric_path)
    validate_metric(metric)
    files = [(HANDLER_FILE, handler_source()), (METRIC_FILE, metric.read_bytes())]
    if requirements is not None:
        req = Path(requirements)
        if not req.is_file():
            raise MetricValidationError(f"{req}: requirements file not found")
        files.append((REQUIREMENTS_FILE, req.read_bytes()))
    elif find_requirements and (metric.parent / REQUIREMENTS_FILE).is_file():
        files.append((REQUIREMENTS_FILE, (metric.parent / REQUIREMENTS_FILE).read_bytes()))
    return Bundle(files=tuple(sorted(files)), metric_path=str(metric.resolve()))


# --- imports the cloud runtime may not have -------------------------------------------------------------

# In the standard library of older Pythons, gone from 3.13 (LSE's runtime): PEP 594 and earlier removals.
REMOVED_BY_PYTHON_313 = frozenset({
    "_bootsubprocess", "_crypt", "_msi", "_sha256", "_sha512", "aifc", "asynchat", "asyncore", "audioop",
    "cgi", "cgitb", "chunk", "crypt", "distutils", "imghdr", "imp", "lib2to3", "mailcap", "msilib", "nis",
    "nntplib", "ossaudiodev", "pipes", "smtpd", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib",
})
# Import names whose distribution is named otherwise, for when this Python does not have it installed.
_DISTRIBUTION_ALIASES = {
    "yaml": "pyyaml", "sklearn": "scikit-learn", "skimage": "scikit-image", "cv2": "opencv-python",
    "pil": "pillow", "bs4": "beautifulsoup4", "dateutil": "python-dateutil", "levenshtein": "levenshtein",
    "google": "google-cloud", "attr": "attrs", "jwt": "pyjwt", "dotenv": "python-dotenv",
}
_BUNDLE_MODULES = {"main", "metric", "__future__"}
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(text: str) -> set[str]:
    """The distribution names a requirements.txt lists (normalized; options, URLs and comments skipped)."""
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _REQUIREMENT_NAME.match(line)
        if match:
            names.add(_normalized(match.group(1)))
    return names


def _guarded(node: ast.AST, parents: dict) -> bool:
    """Whether an import sits in a ``try`` whose handlers catch its ImportError (an optional import)."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                caught = handler.type
                names = [] if caught is None else [caught] if not isinstance(caught, ast.Tuple) else caught.elts
                if caught is None or any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError",
                                                                              "Exception", "BaseException")
                                         for n in names):
                    return True
        child, parent = parent, parents.get(parent)
    return False


def imported_modules(source: str) -> list[str]:
    """The top-level names of the modules a metric's source imports (anywhere, in source order, once
    each), leaving out relative imports and imports guarded by ``try: ... except ImportError``."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        if not _guarded(node, parents):
            found += [(node.lineno, node.col_offset, name.split(".")[0]) for name in names]
    modules: list[str] = []
    for _, _, module in sorted(found):
        if module not in modules:
            modules.append(module)
    return modules


def _provided_by(module: str) -> set[str]:
    """Normalized names of the installed distributions that provide ``module`` (empty when none does)."""
    from importlib import metadata

    try:
        providers = metadata.packages_distributions().get(module, [])
    except Exception:  # noqa: BLE001 - broken metadata must not stop a deploy
        providers = []
    names = {_normalized(name) for name in providers}
    alias = _DISTRIBUTION_ALIASES.get(module.lower())
    if alias:
        names.add(alias)
    return names | {_normalized(module)}


def import_warnings(metric_path: str | os.PathLike, requirements: str | os.PathLike | None = None, *,
                    source: str | None = None) -> list[str]:
    """One line per module the metric imports that LSE's Python 3.13 function will not have.

    That is every module neither in the standard library (``sys.stdlib_module_names``; minus the modules
    3.13 removed) nor listed in the bundle's requirements.txt (``requirements``, else the one beside the
    metric, as ``build_bundle`` picks it). The local function runs on this interpreter and imports
    anything installed here, so such a metric works locally and fails in LSE. ``source``: the metric's
    text when the caller has already read it (``validate_metric`` returns it).
    """
    metric = Path(metric_path)
    try:
        if source is None:
            source = metric.read_text(encoding="utf-8")
        modules = imported_modules(source)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return []  # validate_metric reports an unreadable metric
    req_path = Path(requirements) if requirements is not None else metric.parent / REQUIREMENTS_FILE
    try:
        listed = requirement_names(req_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        listed = set()
    here = f"Python {sys.version.split()[0]}"
    warnings = []
    for module in modules:
        if module in _BUNDLE_MODULES or module in sys.builtin_module_names:
            continue
        if module in REMOVED_BY_PYTHON_313:
            warnings.append(f"{metric} imports {module}, which Python 3.13 (LSE's runtime) no longer has: the "
                            f"local function runs on this machine's {here}, where it still exists")
        elif module not in sys.stdlib_module_names and not (_provided_by(module) & listed):
            warnings.append(f"{metric} imports {module}, which is neither in the standard library nor in a "
                            f"{REQUIREMENTS_FILE} beside the metric: the local function runs on this machine's "
                            f"{here} and may find it there, LSE's Python 3.13 function will not")
    return warnings
