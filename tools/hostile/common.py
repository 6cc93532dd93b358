"""What several groups of cases share: sizes beyond int64 and the setup that patches a
checkpoint's config.json."""
from __future__ import annotations


from hostile.table import Ctx
from hostile.files import copy_ckpt, json_patch


WTE = "<the wte tensor>"  # st_bad's patches: the token embedding, whatever its name in the file
LINE3 = ("line 3", ":3:", ":3 ", "line 3:")  # a text format's error names the line


big = "4294967296"            # 2^32
huge = "9223372036854775807"  # INT64_MAX
over = "99999999999999999999"  # beyond int64

def cfg(src_key: str, **changes):
    def setup(ctx: Ctx):
        copy_ckpt(getattr(ctx, src_key), ctx.p("c"))
        json_patch(ctx.p("c/config.json"), **changes)
    return setup
