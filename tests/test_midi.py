"""Reading Standard MIDI Files into notes, the reference's note envelope and the mix."""

import struct

import numpy as np
import pytest

from audiozoo.audio import midi
from audiozoo.audio.midi import Note, varlen_bytes
from audiozoo.data import soundfont


def _track(events) -> bytes:
    body = b"".join(varlen_bytes(delta) + data for delta, data in events) + b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + body


def _smf(*tracks, division=96, fmt=1) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), division) + b"".join(tracks)


@pytest.mark.parametrize("value, encoded", [(0, b"\x00"), (0x7F, b"\x7f"), (0x80, b"\x81\x00"),
                                            (2880, b"\x96\x40"), (0x3FFF, b"\xff\x7f"),
                                            (0x200000, b"\x81\x80\x80\x00")])
def test_variable_length_quantities(value, encoded):
    assert varlen_bytes(value) == encoded  # the examples of the SMF 1.0 specification
    assert midi._varlen(encoded, 0) == (value, len(encoded))


def test_format_1_with_tempo_change_running_status_drums_and_zero_velocity_offs(tmp_path):
    # Track 0: 120 bpm, then 60 bpm from tick 192 (1 s); track 1 holds the notes.
    tempo = _track([(0, b"\xff\x51\x03" + (500_000).to_bytes(3, "big")),
                    (192, b"\xff\x51\x03" + (1_000_000).to_bytes(3, "big"))])
    notes = _track([
        (0, bytes([0x90, 60, 100])),      # C4 on at 0 s
        (96, bytes([64, 80])),            # running status: E4 on at 0.5 s
        (96, bytes([60, 0])),             # running status, velocity 0: C4 off at 1.0 s
        (0, bytes([0x99, 36, 100])),      # a drum (channel 10): skipped
        (0, b"\xf0\x03\x01\x02\xf7"),     # a sysex message in between
        (96, bytes([0x80, 64, 0])),       # E4 off at 2.0 s (96 ticks at 60 bpm)
        (0, bytes([0x90, 67, 127])),      # G4 never released: ends with the track
        (48, bytes([0xB0, 7, 100])),      # a controller (ignored); the track ends at 2.5 s
    ])
    path = tmp_path / "song.mid"
    path.write_bytes(_smf(tempo, notes))
    assert midi.read_notes(path) == [Note(60, 100, 0.0, 1.0), Note(64, 80, 0.5, 2.0),
                                     Note(67, 127, 2.0, 2.5)]


def test_a_tempo_set_at_tick_0_replaces_the_120_bpm_default(tmp_path):
    assert midi._tick_clock([(0, 250_000)], 480)(480) == 0.25  # a quarter at 240 bpm
    clock = midi._tick_clock([(480, 1_000_000), (0, 250_000)], 480)  # out of order
    assert (clock(480), clock(960)) == (0.25, 1.25)
    tempo = _track([(0, b"\xff\x51\x03" + (250_000).to_bytes(3, "big"))])
    notes = _track([(0, bytes([0x90, 60, 100])), (96, bytes([0x80, 60, 0]))])
    path = tmp_path / "fast.mid"
    path.write_bytes(_smf(tempo, notes))
    assert midi.read_notes(path) == [Note(60, 100, 0.0, 0.25)]


def test_written_notes_read_back_and_the_soundfont_note_reads_as_one_note(tmp_path):
    melody = [Note(60, 90, 0.0, 0.5), Note(64, 100, 0.25, 1.0), Note(67, 60, 1.0, 1.5)]
    path = tmp_path / "melody.mid"
    path.write_bytes(midi.notes_to_midi(melody))
    assert midi.read_notes(path) == melody
    path.write_bytes(soundfont.note_midi(40, 55, 75))
    assert midi.read_notes(path) == [Note(55, 75, 0.0, 3.0)]


@pytest.mark.parametrize("data, message", [
    (b"RIFF....", "no MThd header"),
    (_smf(_track([]), fmt=2), "format 2"),
    (_smf(_track([]), division=0xE728), "SMPTE"),
    (_smf(_track([(0, bytes([60, 100]))])), "data byte before any status byte"),
    (_smf(_track([]))[:-6], "is not a readable Standard MIDI File"),
])
def test_unreadable_files_say_why(tmp_path, data, message):
    path = tmp_path / "bad.mid"
    path.write_bytes(data)
    with pytest.raises(midi.MidiError, match=message):
        midi.read_notes(path)
    with pytest.raises(midi.MidiError, match="cannot read MIDI file"):
        midi.read_notes(tmp_path / "missing.mid")


def test_envelope_is_a_10ms_attack_the_note_and_a_300ms_release_capped_at_3s():
    shape = midi.envelope(0.5, 16000)
    assert len(shape) == 8000 + 4800
    np.testing.assert_allclose(shape[:160], np.linspace(0, 1, 160))
    assert np.all(shape[160:8000] == 1.0)
    np.testing.assert_allclose(shape[8000:], np.linspace(1, 0, 4800))
    assert len(midi.envelope(10.0, 16000)) == 3 * 16000 + 4800


def test_mix_places_enveloped_notes_at_their_starts_scaled_by_velocity():
    rate, length = 1000, 2000
    tone = np.sin(np.arange(length) * 0.3).astype(np.float32)
    notes = [Note(60, 127, 0.0, 0.5), Note(64, 127 // 2, 1.0, 1.2)]
    out = midi.mix_notes(np.stack([tone, 3 * tone]), notes, rate)
    assert len(out) == 1000 + 200 + 300 + rate  # last end + release, then 1 s of tail
    assert np.abs(out).max() == pytest.approx(0.5)
    first, second = out[:1000], out[1000:1500]
    # Each note is peak-normalised before its velocity: the second is half as loud.
    assert np.abs(second).max() / np.abs(first[:800]).max() == pytest.approx(63 / 127, rel=0.02)
    assert np.all(out[800:1000] == 0) and np.all(out[1500:] == 0)
    with pytest.raises(ValueError, match="2 generated notes for 1 MIDI notes"):
        midi.mix_notes(np.stack([tone, tone]), notes[:1], rate)
