"""A FastAPI app for uvicorn --workers: `GET /pid/<n>` answers with the serving pid.

The handler blocks its event loop for 5 ms on purpose, so while one worker is busy the next connection goes to
another worker and every worker serves some of the requests.
"""

import os
import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/pid/{n}")
async def pid(n: int) -> dict[str, int]:
    time.sleep(0.005)
    return {"pid": os.getpid(), "n": n}
