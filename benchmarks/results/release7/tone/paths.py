"""Where the tone experiment reads its data and keeps its outputs (env DATA, TONE)."""
import os
from pathlib import Path

D = Path(os.environ.get("DATA", Path(__file__).resolve().parents[4] / "../shared/data"))
TONE = Path(os.environ.get("TONE", Path.home() / ".cache/uniremoval/release7/tone"))
