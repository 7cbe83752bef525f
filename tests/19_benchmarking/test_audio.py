"""Audio features, synthetic generators and the Speech Commands reader, against independent oracles."""
import numpy as np
import pytest
import scipy.fft
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st
from scipy.io import wavfile

from tinytorch.benchmarking.audio import (AD_ANOMALIES, AD_SAMPLES, CLIP_SAMPLES, KWS_LABELS, dct_matrix,
                                          fit_to_second, frame_count, hz_to_mel, keyword_clip, keyword_clips,
                                          load_speech_commands, log_mel_frames, machine_clip, machine_features,
                                          mel_filterbank, mel_to_hz, mfcc, read_wav, speech_commands_files)


# ---------------------------------------------------------------- frames, mel scale, filters, DCT

def test_frame_count_is_49_for_one_second_and_matches_brute_force():
    assert frame_count(16000, 640, 320) == 49
    for samples, window, stride in [(16000, 480, 320), (1000, 100, 30), (640, 640, 320), (3072, 1024, 512)]:
        starts = [s for s in range(samples) if s + window <= samples and s % stride == 0]
        assert frame_count(samples, window, stride) == len(starts)
    assert frame_count(AD_SAMPLES, 1024, 512) == 5
    with pytest.raises(ValueError, match="shorter than the window"):
        frame_count(100, 640, 320)


def test_mel_scale_hand_values():
    assert hz_to_mel(0) == 0
    assert hz_to_mel(700) == pytest.approx(2595 * np.log10(2))          # 781.17
    assert hz_to_mel(1000) == pytest.approx(999.98, abs=0.01)


@given(st.floats(0, 8000))
def test_mel_to_hz_inverts_hz_to_mel(hz):
    assert mel_to_hz(hz_to_mel(hz)) == pytest.approx(hz, abs=1e-6)


def _triangle_oracle(num_mels, fft_size, rate, fmin, fmax):
    """Plain-loop triangular filters on the mel axis (DC bin zero), as tf.signal documents them."""
    lo, hi = 2595 * np.log10(1 + fmin / 700), 2595 * np.log10(1 + fmax / 700)
    edges = [lo + (hi - lo) * i / (num_mels + 1) for i in range(num_mels + 2)]
    out = np.zeros((num_mels, fft_size // 2 + 1))
    for m in range(num_mels):
        for b in range(1, fft_size // 2 + 1):
            mel = 2595 * np.log10(1 + b * rate / fft_size / 700)
            if edges[m] < mel <= edges[m + 1]:
                out[m, b] = (mel - edges[m]) / (edges[m + 1] - edges[m])
            elif edges[m + 1] < mel < edges[m + 2]:
                out[m, b] = (edges[m + 2] - mel) / (edges[m + 2] - edges[m + 1])
    return out


def test_mel_filterbank_matches_a_plain_loop_and_a_hand_value():
    bank = mel_filterbank()
    assert bank.shape == (40, 513)
    np.testing.assert_allclose(bank, _triangle_oracle(40, 1024, 16000, 20.0, 4000.0), atol=1e-12)
    # one filter between 0 and 4 Hz at 8 Hz sampling: bin 1 (1 Hz) rises to mel(1) / mel(2)-ish centre
    tiny = mel_filterbank(1, 8, 8, 0.0, 4.0)
    centre = hz_to_mel(4.0) / 2
    assert tiny[0, 1] == pytest.approx(2595 * np.log10(1 + 1 / 700) / centre)
    assert tiny[0, 0] == 0 and tiny[0, 4] == 0


def test_neighbouring_triangles_sum_to_one_between_the_first_and_last_centre():
    bank = mel_filterbank()
    mels = hz_to_mel(np.arange(513) * 16000 / 1024)
    edges = np.linspace(hz_to_mel(20.0), hz_to_mel(4000.0), 42)
    inside = (mels >= edges[1]) & (mels <= edges[-2])
    np.testing.assert_allclose(bank[:, inside].sum(axis=0), 1.0, atol=1e-12)
    assert bank[:, hz_to_mel(np.arange(513) * 16000 / 1024) > edges[-1]].sum() == 0


def test_mel_filterbank_rejects_bad_edges():
    with pytest.raises(ValueError, match="fmin < fmax"):
        mel_filterbank(40, 1024, 16000, 4000.0, 20.0)


def test_dct_matrix_matches_scipy_and_is_orthonormal():
    x = np.random.default_rng(0).normal(size=(7, 40))
    np.testing.assert_allclose(x @ dct_matrix(40, 10).T, scipy.fft.dct(x, type=2, norm="ortho")[:, :10], atol=1e-12)
    full = dct_matrix(16, 16)
    np.testing.assert_allclose(full @ full.T, np.eye(16), atol=1e-12)
    with pytest.raises(ValueError, match="num_outputs"):
        dct_matrix(10, 11)


def test_mfcc_matches_a_scipy_pipeline():
    clips = np.random.default_rng(1).normal(scale=0.1, size=(3, CLIP_SAMPLES))
    ours = mfcc(clips)
    assert ours.shape == (3, 49, 10) and ours.dtype == np.float32
    window = scipy.signal.get_window("hann", 640, fftbins=True)     # periodic Hann
    for clip, features in zip(clips, ours):
        frames = np.stack([clip[i * 320:i * 320 + 640] * window for i in range(49)])
        magnitude = np.abs(scipy.fft.rfft(frames, n=1024))
        expected = scipy.fft.dct(np.log(magnitude @ _triangle_oracle(40, 1024, 16000, 20.0, 4000.0).T + 1e-6),
                                 type=2, norm="ortho")[:, :10]
        np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="finite"):
        mfcc(np.full(CLIP_SAMPLES, np.nan))


def test_log_mel_frames_match_a_scipy_pipeline():
    clip = np.random.default_rng(2).normal(size=AD_SAMPLES)
    ours = log_mel_frames(clip)
    assert ours.shape == (1, 640) and ours.dtype == np.float32
    window = scipy.signal.get_window("hann", 1024, fftbins=True)
    frames = np.stack([clip[i * 512:i * 512 + 1024] * window for i in range(5)])
    power = np.abs(scipy.fft.rfft(frames)) ** 2
    expected = 10 * np.log10(power @ _triangle_oracle(128, 1024, 16000, 0.0, 8000.0).T + 1e-10)
    np.testing.assert_allclose(ours[0], expected.ravel(), rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="3072 samples"):
        log_mel_frames(np.zeros(3000))


def test_a_pure_tone_lights_the_mel_band_around_it():
    t = np.arange(AD_SAMPLES) / 16000
    features = log_mel_frames(np.sin(2 * np.pi * 1000 * t)).reshape(5, 128)
    centres = mel_to_hz(np.linspace(0, hz_to_mel(8000.0), 130)[1:-1])
    assert abs(centres[features[2].argmax()] - 1000) < 40

# ---------------------------------------------------------------- synthetic generators


def test_keyword_clips_are_deterministic_balanced_and_one_second():
    a, labels = keyword_clips(np.random.default_rng(5), 2)
    b, _ = keyword_clips(np.random.default_rng(5), 2)
    c, _ = keyword_clips(np.random.default_rng(6), 2)
    assert a.shape == (24, CLIP_SAMPLES) and labels.dtype == np.int64
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.bincount(labels).tolist() == [2] * 12
    assert np.all(np.isfinite(a)) and np.abs(a).max() < 10


def test_silence_is_quieter_than_words():
    rng = np.random.default_rng(7)
    silence = [np.sqrt(np.mean(keyword_clip(rng, KWS_LABELS.index("_silence_")) ** 2)) for _ in range(20)]
    words = [np.sqrt(np.mean(keyword_clip(rng, KWS_LABELS.index("yes")) ** 2)) for _ in range(20)]
    assert max(silence) < np.median(words)


def test_machine_features_put_normal_first_and_label_anomalies_one():
    features, labels = machine_features(np.random.default_rng(3), 4, 8)
    assert features.shape == (12, 640) and features.dtype == np.float32
    assert labels.tolist() == [0] * 4 + [1] * 8


@pytest.mark.parametrize("kind", AD_ANOMALIES)
def test_each_anomaly_changes_the_clip(kind):
    normal, anomalous = machine_clip(np.random.default_rng(4)), machine_clip(np.random.default_rng(4), kind)
    assert normal.shape == anomalous.shape == (AD_SAMPLES,)
    assert not np.allclose(normal, anomalous)


def test_unknown_anomaly_kind_is_refused():
    with pytest.raises(ValueError, match="unknown anomaly 'rattle'"):
        machine_clip(np.random.default_rng(0), "rattle")

# ---------------------------------------------------------------- wav files and Speech Commands


def _write(path, samples, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, samples)


def _speech_commands(root):
    """A tiny Speech Commands folder: yes, no, bed (an unknown word) and one noise recording."""
    rng = np.random.default_rng(0)
    for word, files in {"yes": ["a", "b", "c"], "no": ["a", "b"], "bed": ["a", "b", "c"]}.items():
        for name in files:
            _write(root / word / f"{name}.wav", rng.integers(-3000, 3000, 16000).astype(np.int16))
    _write(root / "yes" / "short.wav", np.full(8000, 1000, dtype=np.int16))
    _write(root / "no" / "long.wav", np.arange(20000, dtype=np.int16))
    _write(root / "_background_noise_" / "white.wav", rng.integers(-500, 500, 40000).astype(np.int16))
    (root / "testing_list.txt").write_text("yes/a.wav\nyes/short.wav\nno/long.wav\nbed/a.wav\nbed/b.wav\n")
    (root / "validation_list.txt").write_text("yes/b.wav\nbed/c.wav\n")
    return root


def test_read_wav_scales_int16(tmp_path):
    _write(tmp_path / "x.wav", np.array([0, 16384, -32768], dtype=np.int16))
    assert read_wav(tmp_path / "x.wav").tolist() == [0.0, 0.5, -1.0]


@pytest.mark.parametrize("samples, rate, message", [
    (np.zeros(100, dtype=np.int16), 8000, "sample rate 8000 Hz"),
    (np.zeros((100, 2), dtype=np.int16), 16000, "2 channels"),
    (np.zeros(100, dtype=np.float32), 16000, "16-bit PCM"),
])
def test_read_wav_names_the_file_and_the_problem(tmp_path, samples, rate, message):
    _write(tmp_path / "bad.wav", samples, rate)
    with pytest.raises(ValueError, match=message) as info:
        read_wav(tmp_path / "bad.wav")
    assert "bad.wav" in str(info.value)


def test_read_wav_refuses_a_file_that_is_not_wav(tmp_path):
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(ValueError, match="text.wav is not a readable .wav"):
        read_wav(tmp_path / "text.wav")


def test_fit_to_second_pads_and_cuts():
    assert fit_to_second(np.ones(3), 5).tolist() == [1, 1, 1, 0, 0]
    assert fit_to_second(np.arange(8.0), 5).tolist() == [0, 1, 2, 3, 4]


def test_speech_commands_files_follow_the_list_files(tmp_path):
    root = _speech_commands(tmp_path)
    names = lambda split: [(p.parent.name + "/" + p.name, KWS_LABELS[y]) for p, y in speech_commands_files(root, split)]
    assert names("test") == [("bed/a.wav", "_unknown_"), ("bed/b.wav", "_unknown_"),
                             ("no/long.wav", "no"), ("yes/a.wav", "yes"), ("yes/short.wav", "yes")]
    assert names("validation") == [("bed/c.wav", "_unknown_"), ("yes/b.wav", "yes")]
    assert names("train") == [("no/a.wav", "no"), ("no/b.wav", "no"), ("yes/c.wav", "yes")]


def test_load_speech_commands_balances_unknown_and_silence(tmp_path):
    root = _speech_commands(tmp_path)
    waves, labels = load_speech_commands(root, "test", seed=0, features="waveform")
    # 3 keyword clips in 2 classes -> round(1.5) = 2 unknown and 2 silence clips
    assert [KWS_LABELS[y] for y in labels] == ["no", "yes", "yes", "_unknown_", "_unknown_", "_silence_", "_silence_"]
    assert waves.shape == (7, 16000) and waves.dtype == np.float32
    np.testing.assert_array_equal(waves[0], np.arange(16000) / 32768)          # no/long.wav cut to 1 s
    np.testing.assert_array_equal(waves[2, :8000], 1000 / 32768)               # yes/short.wav padded
    assert not waves[2, 8000:].any()
    noise = read_wav(root / "_background_noise_" / "white.wav").astype(np.float32)
    for crop in waves[5:]:                                                     # silence: crops of the noise
        starts = np.flatnonzero(noise[:len(noise) - 16000 + 1] == crop[0])
        assert any(np.array_equal(noise[s:s + 16000], crop) for s in starts)
    features, same = load_speech_commands(root, "test", seed=0)
    assert features.shape == (7, 1, 49, 10) and np.array_equal(same, labels)
    np.testing.assert_array_equal(features, mfcc(waves.astype(np.float64))[:, None])


def test_load_speech_commands_errors(tmp_path):
    root = _speech_commands(tmp_path / "sc")
    with pytest.raises(ValueError, match="split must be one of"):
        load_speech_commands(root, "dev")
    with pytest.raises(ValueError, match="features must be"):
        load_speech_commands(root, features="spectrogram")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_speech_commands(tmp_path / "missing")
    _write(root / "yes" / "stereo.wav", np.zeros((16000, 2), dtype=np.int16))
    (root / "testing_list.txt").write_text("yes/stereo.wav\n")
    with pytest.raises(ValueError, match="stereo.wav: 2 channels"):
        load_speech_commands(root, "test")
    (root / "testing_list.txt").unlink()
    with pytest.raises(FileNotFoundError, match="testing_list.txt is missing"):
        load_speech_commands(root, "test")
