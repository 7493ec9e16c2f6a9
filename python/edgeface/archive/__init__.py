"""Photo-archive indexing and search: ``build_index`` (in-process, worker processes, or Ray Data)
writes one Parquet row per face; ``search_gallery`` / ``search_face`` query it. Needs pyarrow
(``pip install 'edgeface[index]'``); the Ray engine needs ``edgeface[ray]``. Format: docs/archive.md."""
from .local import IndexSummary, build_index
from .schema import ArchiveIndexError, face_schema, read_meta
from .search import FaceMatch, search_face, search_gallery

__all__ = ["ArchiveIndexError", "FaceMatch", "IndexSummary", "build_index", "face_schema", "read_meta",
           "search_face", "search_gallery"]
