"""The web server: an HTTP API and an offline page over a sampler run (a conditional GAN above all).

`create_app` (in `zspace.web.app`) needs the optional `web` extra (FastAPI, uvicorn).
"""
