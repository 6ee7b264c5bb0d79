"""The import path README documented before the move: ``intref.convert.hf_ibert.crosscheck`` holds it."""

from .hf_ibert.crosscheck import crosscheck_hf_ibert

__all__ = ["crosscheck_hf_ibert"]
