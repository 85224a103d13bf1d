"""jpegli as a peer codec."""

import numpy as np
import pytest

from dnnjpeg.codec import decode, parse_header_bytes
from dnnjpeg.codec.jpegli import encode_jpegli, jpegli_tables
from dnnjpeg.evaluate.spec import parse_codec

from .makers import noise_image


def test_jpegli_files_carry_the_tables_it_is_said_to_use():
    img = noise_image(48, 64, seed=2)
    for q in (20, 60, 95):
        data = encode_jpegli(img, q)
        h = parse_header_bytes(data)
        assert h.subsampling == "4:2:0" and h.mode == "baseline"
        assert h.quant_tables() == jpegli_tables(q)
        assert decode(data).shape == (48, 64, 3)
    sizes = [len(encode_jpegli(img, q)) for q in (20, 60, 95)]
    assert sizes == sorted(sizes)  # quality means rate
    assert decode(encode_jpegli(img[..., 0], 80)).shape == (48, 64, 3)  # gray goes as RGB


def test_jpegli_codec_spelling():
    c = parse_codec("jpegli:30,70")
    assert c.kind == "jpegli" and [p.quality for p in c.points] == [30, 70]
    assert all(p.encoder == "jpegli" and p.subsampling == "4:2:0" for p in c.points)
    img = noise_image(32, 40)
    assert c.points[0].encode(img) == encode_jpegli(img, 30)
    assert len(parse_codec("jpegli").points) == 12
    with pytest.raises(ValueError, match="4:2:0 only"):
        parse_codec("jpegli@4:4:4")
    with pytest.raises(ValueError, match="1..100"):
        parse_codec("jpegli:0")
    with pytest.raises(ValueError, match="uint8"):
        encode_jpegli(np.zeros((8, 8, 3), np.float32), 50)
