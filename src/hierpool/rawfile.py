"""Read a user's raw data file: the mapped columns only, every cell as text.

Whatever reaches the workflow as "a CSV" is checked before it is parsed: a gzipped CSV is
read as it is (whatever its name), an Excel workbook or zip archive renamed ``.csv`` is
refused with advice, and a file that cannot be parsed (a byte that is not valid in the
configured encoding, a row with more or fewer fields than the header, a quote that is never
closed) stops with the file, the line and what to do. The file is only read, never written.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from hierpool.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
NOT_CSV = {  # leading bytes -> what the file really is
    b"PK\x03\x04": "an Excel workbook (.xlsx) or a zip archive",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an old Excel workbook (.xls)",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF document",
}
OTHER_SEPARATORS = {";": "semicolon", "\t": "tab", "|": "pipe"}
HEADER_BYTES = 1 << 16


def preview(items, n: int = 5) -> str:
    """The first ``n`` items and how many more, for messages that must stay short."""
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def _open_binary(path: Path):
    """The file's bytes, decompressed when it is gzip (by its leading bytes, not its name)."""
    with open(path, "rb") as handle:
        magic = handle.read(8)
    for lead, what in NOT_CSV.items():
        if magic.startswith(lead):
            raise DataError(
                f"{path}: this is {what}, not a CSV text file. Open it in Excel or LibreOffice and save it "
                "as 'CSV UTF-8 (comma delimited)', then point the dataset's `path` at the .csv file."
            )
    if magic.startswith(GZIP_MAGIC):
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def _python_encoding(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return "utf-8-sig" if name == "utf-8" else name  # -sig: an Excel byte-order mark is not data


def read_header(path: Path, sep: str, encoding: str) -> list[str]:
    """The header's column names, stripped; checks that the file is not empty and names are unique."""
    with _open_binary(path) as handle:
        start = handle.read(HEADER_BYTES)
    text = start.decode(_python_encoding(encoding), errors="replace")
    if not text.strip():
        raise DataError(
            f"{path}: the file is empty. Export the data again with a header row and one row per observation."
        )
    first = text.splitlines()[0]
    names = [name.strip() for name in next(csv.reader([first], delimiter=sep))]
    if len(names) == 1:
        for other, word in OTHER_SEPARATORS.items():
            if other in first and other != sep:
                raise DataError(
                    f"{path}: the header has one column, {first[:80]!r}, which contains {word}s ({other!r}). "
                    f"The file is probably {word}-separated: set `sep: {other!r}` for this dataset in the config "
                    "(for decimal commas, also `decimal: ','`)."
                )
    counts: dict[str, int] = {}
    for name in names:
        if name:
            counts[name] = counts.get(name, 0) + 1
    duplicated = sorted(name for name, count in counts.items() if count > 1)
    if duplicated:
        raise DataError(
            f"{path}: duplicate column names {preview(duplicated)}. Rename them in the file (or a copy of it) "
            "so that every column has a unique name."
        )
    return names


def read_raw(
    path: str | Path, columns: list[str] | None = None, sep: str = ",", encoding: str = "utf-8"
) -> pd.DataFrame:
    """Read a raw CSV (or gzipped CSV) with every cell as text.

    Parameters
    ----------
    path : str or Path
        The file; it is only read.
    columns : list of str, optional
        Column names to read (header names after stripping spaces); names the file lacks are
        left for the caller to report. All columns when omitted.
    sep : str
        Field separator.
    encoding : str
        Text encoding of the file (``utf-8``, ``cp1252``, ``latin-1``, ...).

    Returns
    -------
    pandas.DataFrame
        One text column per requested column present in the file, in file order; empty cells are
        ``""``. ``frame.attrs["file_columns"]`` lists every column of the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Check the dataset's `path` in the config "
            "(relative paths start at the directory you run snakemake from)."
        )
    names = read_header(path, sep, encoding)
    wanted = set(names) if columns is None else set(columns)
    positions = [i for i, name in enumerate(names) if name and name in wanted]
    placeholders = [f"c{i}" for i in range(len(names))]  # raw names may be empty or padded
    read_options = pacsv.ReadOptions(
        column_names=placeholders, skip_rows=1, encoding=_arrow_encoding(encoding)
    )
    parse_options = pacsv.ParseOptions(delimiter=sep, newlines_in_values=True)
    convert_options = pacsv.ConvertOptions(
        include_columns=[placeholders[i] for i in positions],
        column_types={placeholders[i]: pa.string() for i in positions},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        with _open_binary(path) as handle:
            table = pacsv.read_csv(
                handle,
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise diagnose(path, sep, encoding, len(names), err) from None
    frame = table.to_pandas()
    frame.columns = [names[i] for i in positions]
    frame.attrs["file_columns"] = [name for name in names if name]
    if frame.empty:
        raise DataError(
            f"{path}: the file has a header but no data rows. Add one row per observation below the header "
            "(or check that the export wrote the data, not only the column names)."
        )
    return frame


def _arrow_encoding(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return "utf8" if name == "utf-8" else name


def diagnose(path: Path, sep: str, encoding: str, n_fields: int, err: Exception) -> DataError:
    """Find the first line that stops the parser and say what is wrong there and what to do."""
    bad_byte = _first_undecodable(path, encoding)
    if bad_byte is not None:
        line, byte = bad_byte
        return DataError(
            f"{path}: line {line} is not valid {encoding} text (byte 0x{byte:02x}). The file was probably saved as "
            "Windows-1252 / Latin-1 (common for exports with accents, e.g. 'é'): set `encoding: cp1252` (or `latin-1`) "
            "for this dataset in the config, or save the file again as UTF-8."
        )
    with _open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=_python_encoding(encoding), newline="")
        reader = csv.reader(text, delimiter=sep, strict=True)
        line = 1
        try:
            for fields in reader:
                start, line = line + 1, reader.line_num
                if fields and len(fields) != n_fields:
                    return DataError(
                        f"{path}: line {start} has {len(fields)} fields but the header has {n_fields} "
                        f"(separator {sep!r}). A value probably contains {sep!r} without quotes, or a field is missing: "
                        f'quote such values ("3{sep}5"), fix the line, or set the dataset\'s `sep` if the file uses another separator.'
                    )
        except csv.Error:
            return DataError(
                f'{path}: a quote (") opened at or after line {line + 1} is never closed or is followed by stray text, so '
                "the rest of the file would be read as one value. Close or remove that quote (a value containing the "
                'separator or a line break must be written as "...", with inner quotes doubled).'
            )
    return DataError(
        f"{path}: the file cannot be read as a CSV ({err}). Check the separator (`sep`) and the quoting."
    )


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """(line, byte) of the first byte that is not valid in ``encoding``, or None."""
    decoder = codecs.getincrementaldecoder(_python_encoding(encoding))("strict")
    lines = 1
    with _open_binary(path) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                return lines + chunk[: err.start].count(b"\n"), chunk[err.start]
            lines += chunk.count(b"\n")
    return None
