"""Media: audio and video in and out, through PyAV (no system ffmpeg).

* :mod:`~copdata.media.decode`: probe a file, decode audio (:func:`read_audio`,
  the concatenated blocks of :mod:`~copdata.media.blocks`) and video frames on
  a constant-rate grid, levels.
* :mod:`~copdata.media.encode`: write H.264 mp4 and 16-bit FLAC/WAV.
* :mod:`~copdata.media.blocks`: a file's audio as a stream of blocks (bounded
  memory), and a cursor that cuts clips out of it.
* :mod:`~copdata.media.download`: fetch a video with yt-dlp (YouTube sources).
* :mod:`~copdata.media.container`: opening a file with PyAV and the errors it
  raises, shared by the others.
"""
