package http

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openapiJSON documents every route; a test checks it against the router.
//
//go:embed openapi.json
var openapiJSON []byte

func (s *Server) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openapiJSON)
}
