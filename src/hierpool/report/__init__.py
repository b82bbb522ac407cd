"""The report: what it says and how it is rendered.

- `markup`: escaping and number formatting, so that nothing from the data reaches the HTML as
  markup;
- `outputs`: the dataset's results as the report rule declares them (its manifest), and the
  jobs' timings;
- `headline`: the numbers the summary states, what changed since the previous run, and the
  versions behind it;
- `render`: the Quarto document to one self-contained HTML file.

The report (reports/report.qmd) only reads files the workflow wrote; it fits nothing.
"""
