"""A @rawhttp scoring script as Azure ML's docs write them: the Flask request's files, form, args, headers, JSON."""
import hashlib
import os

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    print("raw init", os.environ.get("MODEL_VERSION", "1"))


@rawhttp
def run(request):
    assert isinstance(request, AMLRequest)
    if request.method == "GET":
        return AMLResponse({"args": dict(request.args), "path": request.path}, 200, json_str=True)
    if request.files:
        f = request.files["image"]
        data = f.read()
        return {"filename": f.filename, "sha256": hashlib.sha256(data).hexdigest(), "form": dict(request.form),
                "args": dict(request.args), "header": request.headers.get("X-Custom"), "method": request.method}
    body = request.get_json()
    raw = request.get_data()
    return AMLResponse({"json": body, "bytes": len(raw), "ctype": request.headers["Content-Type"]}, 201,
                       {"x-echo": "yes"}, json_str=True)
