-- W2: POST an order of 1..max_lines distinct random SKUs, a random German address, the payment
-- of CONFIG.payment_json (manual in W2, a card token in W2-card), a unique Idempotency-Key and a
-- random customer's bearer token.

local function order_lines()
  local wanted = math.random(1, math.min(CONFIG.max_lines, CONFIG.sku_count))
  local chosen, lines = {}, {}
  for _ = 1, 100 do  -- bounded: a few draws find `wanted` distinct SKUs
    if #lines >= wanted then break end
    local i = math.random(0, CONFIG.sku_count - 1)
    if not chosen[i] then
      chosen[i] = true
      table.insert(lines, string.format('{"sku":"%s","qty":%d}',
        string.format(CONFIG.sku_format, i), math.random(1, CONFIG.max_qty)))
    end
  end
  return table.concat(lines, ",")
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"lines":[%s],"ship_to":{"lat":%.4f,"lon":%.4f},"payment":%s}',
    order_lines(),
    CONFIG.lat_min + math.random() * (CONFIG.lat_max - CONFIG.lat_min),
    CONFIG.lon_min + math.random() * (CONFIG.lon_max - CONFIG.lon_min),
    CONFIG.payment_json or '{"method":"manual"}')
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%s-%d-%d", CONFIG.run_id, thread_id, sent),
    ["Authorization"] = "Bearer " .. CONFIG.tokens[math.random(1, #CONFIG.tokens)],
  }
  return wrk.format("POST", CONFIG.path, headers, body)
end
