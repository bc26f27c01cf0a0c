import numpy as np
import pytest

from copdata.errors import MediaError, MissingStreamError
from copdata.media import decode, encode
from mediafactory import decode_level, pyav_decode


def test_variable_frame_rate_becomes_a_constant_grid(make_video):
    # Source frames alternate 20 ms and 45 ms apart (VFR); output at 25 fps must
    # show, at each t = i/25, the source frame on screen then.
    times, t = [], 0.0
    for i in range(40):
        times.append(round(t, 3))
        t += 0.020 if i % 2 else 0.045
    path = make_video("vfr.mp4", frame_times=times, seconds=t, pix_fmt="yuv444p", size=(64, 32))
    frames = list(decode.iter_frames(path, 25.0))
    assert len(frames) == int(np.floor(t * 25 + 1e-9)) or len(frames) == int(np.ceil(t * 25))
    for i, frame in enumerate(frames):
        expected = max(k for k, ft in enumerate(times) if ft <= i / 25 + 1e-6)
        assert decode_level(frame) == expected % 44, i


def test_odd_sizes_crop_and_resize_give_even_frames(make_video):
    path = make_video("odd.mp4", size=(161, 65), pix_fmt="yuv444p", seconds=1.0)
    frames = list(decode.iter_frames(path, 25.0))
    assert frames[0].shape == (64, 160, 3)
    crop = list(decode.iter_frames(path, 25.0, crop=(11, 3, 100, 40)))
    assert crop[0].shape == (36, 88, 3)
    resized = list(decode.iter_frames(path, 25.0, size=(81, 33)))
    assert resized[0].shape == (32, 80, 3)
    with pytest.raises(MediaError, match="crop box"):
        list(decode.iter_frames(path, 25.0, crop=(0, 0, 500, 40)))


def test_audio_is_mono_at_the_target_rate_with_exact_trimming(make_video):
    path = make_video("st.mp4", seconds=3.0, sample_rate=48000, channels=2)
    audio, sr = decode.read_audio(path, 44100)
    assert sr == 44100 and audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 3 * 44100) < 0.05 * 44100
    part, _ = decode.read_audio(path, 22050, start=1.0, end=2.5)
    assert len(part) == round(1.5 * 22050)


def test_flac_and_wav_round_trip(tmp_path):
    x = (0.5 * np.sin(np.arange(44100) / 10)).astype(np.float32)
    for name in ("a.flac", "a.wav"):
        encode.write_audio(tmp_path / name, x, 44100)
        y, sr = decode.read_audio(tmp_path / name)
        assert sr == 44100 and len(y) == len(x)
        assert np.abs(y - x).max() < 1e-4
    with pytest.raises(ValueError):
        encode.write_audio(tmp_path / "bad.flac", np.array([np.nan], np.float32), 44100)


def test_encoded_clip_has_exact_frame_count(tmp_path):
    frames = [np.full((48, 96, 3), 10 * (i % 20), np.uint8) for i in range(250)]
    assert encode.encode_video(tmp_path / "c.mp4", frames, 25.0) == 250
    assert decode.count_frames(tmp_path / "c.mp4") == 250
    assert decode.read_frames(tmp_path / "c.mp4").shape == (250, 48, 96, 3)


def test_bad_files_are_typed_errors(tmp_path, make_video):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        decode.probe(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(MediaError):
        decode.probe(junk)
    silent = make_video("noaudio.mp4", with_audio=False, seconds=1.0)
    with pytest.raises(MissingStreamError):
        decode.read_audio(silent, 44100)


def test_read_audio_gives_the_samples_a_wav_holds(tmp_path):
    # oracle: 16-bit samples the test writes itself (soundfile); FFmpeg reads s16 as x / 32768
    import soundfile as sf
    rate = 22050
    pcm = np.random.default_rng(0).integers(-30000, 30000, size=3 * rate + 123, dtype=np.int16)
    path = tmp_path / "known.wav"
    sf.write(path, pcm, rate, subtype="PCM_16")
    expected = pcm.astype(np.float32) / 32768
    audio, sr = decode.read_audio(path)
    assert sr == rate and np.array_equal(audio, expected)
    for start, end in [(0.0, None), (0.371, 1.2), (1.5, None), (1.25, 2.5), (2.9, None)]:
        part, _ = decode.read_audio(path, start=start, end=end)
        lo, hi = round(start * rate), None if end is None else round(end * rate)
        assert np.array_equal(part, expected[lo:hi]), (start, end)
    assert len(decode.read_audio(path, start=4.0)[0]) == 0  # past the end: no samples


def test_read_audio_resampled_equals_an_independent_pyav_decode(make_video):
    # oracle: the whole stream decoded and resampled in the test with PyAV's own
    # resampler; read_audio must give the same samples, trimmed at round(t * rate)
    path = make_video("r.mp4", seconds=4.0, sample_rate=48000, channels=2, size=(64, 32))
    for rate in (16000, 44100):
        whole = pyav_decode(path, rate)
        for start, end in [(0.0, None), (0.2131, 0.97), (0.5, 3.3)]:
            got, sr = decode.read_audio(path, rate, start, end)
            lo, hi = round(start * rate), None if end is None else round(end * rate)
            assert sr == rate and np.array_equal(got, whole[lo:hi]), (rate, start, end)
