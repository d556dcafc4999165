"""Tables, Pareto front, figures and export. Callable from Python."""
from aqsvit.report.tables import MEASUREMENT_HEADERS, markdown_table, measurement_cells

__all__ = ["MEASUREMENT_HEADERS", "markdown_table", "measurement_cells"]
