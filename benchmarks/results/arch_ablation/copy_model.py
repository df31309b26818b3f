"""Copy a run's exported model file to DEST/NAME.{json,safetensors}, so every report labels it
by NAME (a model is labelled by its file name). Usage: copy_model.py EXPORT.json DEST NAME"""
import json
import shutil
import sys
from pathlib import Path

src, dest, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
cfg = json.loads(src.read_text())
shutil.copy(src.parent / cfg["weights"], dest / f"{name}.safetensors")
cfg["weights"] = f"{name}.safetensors"
(dest / f"{name}.json").write_text(json.dumps(cfg, indent=1, sort_keys=True))
