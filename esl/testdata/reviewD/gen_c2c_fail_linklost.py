# click-to-call-gateway-fails-agent-stays[-link-lost].esl from ../derived/click-to-call-carrier-failover.esl:
# the only carrier (gw1) refuses (503, NORMAL_TEMPORARY_FAILURE); the agent's leg stays up
# (continue_on_fail, an announcement: no subscribed event of it) and the switch hangs it up later.
# The -link-lost variant drops the ESL link after gw1's hangup; the resync ("show channels")
# lists the agent's leg only; then the agent's leg hangs up.
import re, json
raw = open('../derived/click-to-call-carrier-failover.esl', 'rb').read()
frames = []
i = 0
while i < len(raw):
    j = raw.find(b'\n\n', i)
    if j < 0:
        break
    head = raw[i:j + 2]
    m = re.search(rb'Content-Length: (\d+)', head)
    n = int(m.group(1)) if m else 0
    frames.append(raw[i:j + 2 + n])
    i = j + 2 + n
reconnect = open('/tmp/reconnect.txt', 'rb').read()
agent = {"uuid": "", "direction": "outbound", "created": "2026-12-03 12:13:20", "created_epoch": "1796300000",
         "name": "", "state": "CS_EXECUTE", "cid_name": "1000", "cid_num": "1000", "ip_addr": "127.0.0.1",
         "dest": "1000", "application": "playback", "application_data": "", "dialplan": "XML", "context": "default",
         "callstate": "ACTIVE", "call_uuid": "", "hostname": "vm"}
body = frames[4].decode()
agent["uuid"] = agent["call_uuid"] = re.search(r'^Unique-ID: (.*)$', body, re.M).group(1)
from urllib.parse import unquote
agent["name"] = unquote(re.search(r'^Channel-Name: (.*)$', body, re.M).group(1))
js = json.dumps({"row_count": 1, "rows": [agent]}).encode()
api = b'Content-Type: api/response\nContent-Length: %d\n\n' % len(js) + js
tail = [frames[k] for k in (29, 30, 34, 35)]
open('click-to-call-gateway-fails-agent-stays.esl', 'wb').write(b''.join(frames[:19] + tail))
open('click-to-call-gateway-fails-agent-stays-link-lost.esl', 'wb').write(b''.join(frames[:19]) + reconnect.rstrip(b'\n') + b'\n\n' + api + b''.join(tail))
