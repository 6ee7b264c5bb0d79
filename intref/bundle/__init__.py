"""Bundle storage: a ``Graph`` on disk, as a directory or a single zip of ``graph.json`` + ``tensors/*.npy``.

    load.py     ``load`` / ``save`` / ``graph_sha256``: the directory and zip containers
    schema.py   graph.json parsed strictly, every field validated
    jsonio.py   strict JSON reading, canonical JSON writing
    npy.py      ``.npy`` headers checked before data is read, tensor file encodings
    int4.py     int4 packing, two nibbles a byte (tensor files and golden .bin files)
    write.py    a ``Graph`` as a graph.json document, tensor file names

The format is specified in ``docs/format.md``.
"""

from .load import graph_sha256, load, save

__all__ = ["graph_sha256", "load", "save"]
