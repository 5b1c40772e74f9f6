"""Character cards (V2 / V3: PNG, JSON, CHARX), their macros and lorebooks.

    ohlora.cards.spec       the card JSON: parse, check limits, V2 <-> V3, every field kept
    ohlora.cards.png        `chara` / `ccv3` tEXt chunks in PNG files
    ohlora.cards.charx      CHARX zips (card.json + assets), read defensively
    ohlora.cards.convert    card fields <-> persona.toml
    ohlora.cards.files      `ohlora persona import` / `export` (adapter + base fingerprint in a CHARX)
    ohlora.cards.macros     {{char}}, {{user}}, {{random:...}}
    ohlora.cards.lorebook   lorebook entries, Korean-aware key matching, token budget

App layer: the foundation (prompt, personas, store) never imports this package.
"""
