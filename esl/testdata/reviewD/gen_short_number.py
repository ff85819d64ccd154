# outbound-gateway-short-number-answered.esl: ../derived/outbound-carrier-failover-second-answers.esl
# with the outside number +4930123456 replaced by a 6-digit local number 123456 (a short or local
# number a carrier takes without prefix; 1000 dials 9123456). Content-Length recomputed.
import re
raw = open('../derived/outbound-carrier-failover-second-answers.esl', 'rb').read()
out = b''
i = 0
while i < len(raw):
    j = raw.find(b'\n\n', i)
    if j < 0:
        out += raw[i:]
        break
    head = raw[i:j + 2]
    m = re.search(rb'Content-Length: (\d+)', head)
    if not m:
        out += head
        i = j + 2
        continue
    n = int(m.group(1))
    body = raw[j + 2:j + 2 + n]
    body = body.replace(b'%2B4930123456', b'123456').replace(b'+4930123456', b'123456').replace(b'4930123456', b'123456')
    head = head.replace(m.group(0), b'Content-Length: %d' % len(body))
    out += head + body
    i = j + 2 + n
open('outbound-gateway-short-number-answered.esl', 'wb').write(out)
