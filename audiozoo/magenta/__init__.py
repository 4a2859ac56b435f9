"""magenta's published TensorFlow checkpoints as audiozoo workdirs, with no network.

    from audiozoo.magenta import import_gansynth, import_nsynth

    import_nsynth("wavenet-ckpt/model.ckpt-200000", "runs/nsynth_magenta")   # NSynth (2017)
    import_gansynth("acoustic_only", "runs/gansynth_acoustic")               # GANSynth (2019)

or `audiozoo import magenta-nsynth CKPT_PREFIX --workdir W` / `audiozoo import
magenta-gansynth CKPT_DIR --workdir W`. Each importer checks the checkpoint's variable names
and shapes against the table of the model magenta's source builds (models/nsynth/wavenet/
h512_bo16.py; models/gansynth/lib/networks.py), maps every variable onto the audiozoo model
configured as exactly that graph, and writes a normal workdir: `audiozoo.load(W)` and the CLI
verbs then need only the core install. Reading the checkpoint needs TensorFlow, from the
`magenta` extra (pip install 'audiozoo[magenta]').
"""

from audiozoo.magenta.gansynth import import_gansynth
from audiozoo.magenta.nsynth import H512_BO16, NSynthShape, import_nsynth

__all__ = ["H512_BO16", "NSynthShape", "import_gansynth", "import_nsynth"]
