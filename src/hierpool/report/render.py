"""Render a Quarto report to one self-contained HTML file: with Quarto when it is installed,
otherwise through a fallback made of real, maintained tools.

Fallback: jupytext reads the ``.qmd`` (its R Markdown reader understands ```{python} chunks),
nbclient executes the cells in a Jupyter kernel, nbconvert writes Markdown with the cell outputs
(code hidden, as the report's ``echo: false`` asks), and pandoc (from pypandoc_binary) turns it
into standalone HTML with every figure embedded. Quarto-specific features degrade gracefully:
callout blocks become styled ``div``s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

QUARTO_HINT = "install Quarto (https://quarto.org/docs/get-started/ or `conda install -c conda-forge quarto`) for the native renderer"

FALLBACK_CSS = """
body { max-width: 1100px; margin: 2em auto; padding: 0 1.5em; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: #222; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; display: block; overflow-x: auto; max-width: 100%; } th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; height: auto; }
pre, code { background: #f6f8fa; font-size: .9em; } pre { padding: .6em; overflow-x: auto; }
.callout-warning, .callout-important { border-left: 5px solid #e0a800; background: #fff8e1; padding: .5em 1em; margin: 1em 0; }
.callout-important { border-left-color: #d32f2f; background: #fdecea; }
.callout-note, .callout-tip { border-left: 5px solid #1976d2; background: #e8f1fb; padding: .5em 1em; margin: 1em 0; }
.renderer-note { color: #555; font-size: .85em; }
"""


@dataclass(frozen=True)
class RenderResult:
    html: Path
    renderer: str
    message: str


def quarto_path() -> str | None:
    return shutil.which("quarto")


def render_report(
    source: Path,
    output: Path,
    params: dict,
    workdir: Path,
    force_fallback: bool = False,
    timeout: int = 1200,
    files: dict[str, str] | None = None,
) -> RenderResult:
    """Render ``source`` with ``params`` into the single file ``output``, working inside ``workdir``.

    ``workdir`` must be private to this render (it is emptied first): Quarto writes
    intermediate files next to the source, and two renders of one source in one folder would collide.
    ``files`` (name -> text) are written into it first, e.g. the report's manifest.
    """
    workdir = Path(workdir).resolve()
    if workdir.exists():
        shutil.rmtree(workdir)  # fresh for every render: nothing left over from an earlier one
    workdir.mkdir(parents=True)
    for name, text in (files or {}).items():
        (workdir / name).write_text(text)
    local = workdir / source.name
    shutil.copy(source, local)
    quarto = None if force_fallback else quarto_path()
    if quarto:
        renderer = f"Quarto {_quarto_version(quarto)}"
        message = f"report renderer: {renderer}"
        html = _render_quarto(quarto, local, {**params, "renderer": renderer}, timeout)
    else:
        renderer = (
            "fallback (Quarto not found): jupytext + nbclient (Jupyter kernel) + nbconvert + pandoc"
        )
        message = f"report renderer: Quarto not found on PATH, used the fallback (Jupyter execution + nbconvert + pandoc); {QUARTO_HINT}"
        html = _render_fallback(local, {**params, "renderer": renderer}, timeout)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    shutil.copy(html, tmp)
    os.replace(tmp, output)
    return RenderResult(html=output, renderer=renderer, message=message)


def render_rule_report(smk, label: str, **params) -> RenderResult:
    """Render a report rule's ``input.qmd`` into ``output.html``: the body of the workflow's report scripts.

    The report gets ``params`` plus ``results_dir`` (``smk.params.results_dir`` made absolute)
    and ``project_dir`` (the working directory); it is rendered in ``smk.params.workdir``.
    The renderer's message goes to the log and, after ``label``, to the console. A rule with an
    ``input.results`` list gets a manifest of it (``params["manifest"]``, see
    `hierpool.report.outputs.DatasetOutputs.from_manifest`).
    """
    project = Path.cwd().resolve()
    results_dir = (project / smk.params.results_dir).resolve()
    params = {**params, "results_dir": str(results_dir), "project_dir": str(project)}
    files = {}
    if hasattr(smk.input, "results"):  # the report's declared inputs become its manifest
        from hierpool.report.outputs import manifest_text

        files["manifest.json"] = manifest_text(results_dir, smk.input.results)
        params["manifest"] = str((project / smk.params.workdir).resolve() / "manifest.json")
    result = render_report(
        Path(smk.input.qmd), Path(smk.output.html), params, Path(smk.params.workdir), files=files
    )
    print(result.message)
    print(f"{label}: {result.message}", file=sys.__stderr__)
    return result


def _quarto_version(quarto: str) -> str:
    try:
        return subprocess.run(
            [quarto, "--version"], capture_output=True, text=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown version"


def _render_quarto(quarto: str, local: Path, params: dict, timeout: int) -> Path:
    args = [quarto, "render", local.name, "--to", "html"]
    for key, value in params.items():
        args += ["-P", f"{key}:{value}"]
    env = {**os.environ, "QUARTO_PYTHON": sys.executable}
    subprocess.run(args, cwd=local.parent, check=True, timeout=timeout, env=env)
    return local.with_suffix(".html")


KERNEL_NAME = "hierpool-python"


def private_kernel(workdir: Path) -> dict:
    """A kernelspec that runs this very interpreter, found first via JUPYTER_PATH.

    The kernelspec shipped with ipykernel starts whatever `python` is first on PATH, which
    need not be the workflow's environment.
    """
    spec_dir = workdir / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hierpool",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return {
        "JUPYTER_PATH": os.pathsep.join(
            [str(workdir / "jupyter"), os.environ.get("JUPYTER_PATH", "")]
        ).rstrip(os.pathsep)
    }


def drop_stderr(notebook) -> None:
    """Kernel chatter and warnings go to stderr; they belong in the log, not the report."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                o
                for o in cell.outputs
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]


def read_qmd(path: Path):
    """Read a .qmd as a notebook without Quarto: its code chunks use R Markdown's ```{python} syntax."""
    import jupytext

    notebook = jupytext.reads(path.read_text(), fmt="Rmd")
    front = notebook.cells[0] if notebook.cells and notebook.cells[0].cell_type == "raw" else None
    return notebook, (front.source if front is not None else "")


def inject_parameters(notebook, params: dict) -> None:
    """Papermill-style: a cell after the one tagged ``parameters`` overrides its defaults."""
    import nbformat

    assignments = "\n".join(f"{key} = {json.dumps(value)}" for key, value in params.items())
    cell = nbformat.v4.new_code_cell(f"# injected parameters\n{assignments}")
    index = next(
        (
            i
            for i, c in enumerate(notebook.cells)
            if c.cell_type == "code" and "tags: [parameters]" in c.source
        ),
        None,
    )
    notebook.cells.insert(index + 1 if index is not None else 0, cell)


def _render_fallback(local: Path, params: dict, timeout: int) -> Path:
    import nbformat
    import pypandoc
    import yaml
    from nbclient import NotebookClient
    from nbconvert import MarkdownExporter

    notebook, front_matter = read_qmd(local)
    meta = yaml.safe_load(front_matter.strip().strip("-")) if front_matter else {}
    if notebook.cells and notebook.cells[0].cell_type == "raw":
        notebook.cells.pop(0)
    inject_parameters(notebook, params)
    notebook.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "hierpool",
        "language": "python",
    }
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH",)}
    os.environ.update(private_kernel(local.parent))
    try:
        NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name=KERNEL_NAME,
            resources={"metadata": {"path": str(local.parent)}},
        ).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    drop_stderr(notebook)
    nbformat.write(notebook, local.with_suffix(".executed.ipynb"))

    exporter = MarkdownExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, resources = exporter.from_notebook_node(
        notebook, resources={"output_files_dir": "figures"}
    )
    for name, data in resources.get("outputs", {}).items():
        target = local.parent / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    markdown = local.with_suffix(".md")
    markdown.write_text(body)
    css = local.parent / "fallback.css"
    css.write_text(FALLBACK_CSS)
    html = local.with_suffix(".html")
    title = str(meta.get("title", local.stem)) if isinstance(meta, dict) else local.stem
    pypandoc.convert_file(
        str(markdown),
        "html5",
        format="markdown+fenced_divs+raw_html+pipe_tables-implicit_figures",
        outputfile=str(html),
        extra_args=[
            "--standalone",
            "--embed-resources",
            f"--css={css.name}",
            f"--metadata=title:{title}",
            "--toc",
            "--toc-depth=2",
            f"--resource-path={local.parent}",
        ],
        cworkdir=str(local.parent),
    )
    return html
